ARG BASE_IMAGE=node:24-bookworm-slim
FROM ${BASE_IMAGE} AS build
# Build with dev dependencies (tsc, the demo-model builder), then drop them.
WORKDIR /app
# ONNX Runtime's CPU binaries ship in the npm package; its install script would fetch CUDA parts.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm run demo-model
# Production dependencies only, and only this platform's ONNX Runtime binaries (the package
# carries macOS, Windows and both Linux architectures: ~250 MB that would never load here).
RUN npm prune --omit=dev --no-audit --no-fund \
 && keep="linux/$(node -p process.arch)" \
 && cd node_modules/onnxruntime-node/bin/napi-v6 \
 && for d in */*; do [ "$d" = "$keep" ] || rm -rf "$d"; done \
 && find . -type d -empty -delete \
 && test -f "$keep/onnxruntime_binding.node"

FROM ${BASE_IMAGE} AS runtime
# jemalloc: glibc's malloc fragments under sharp's many-threaded image work (sharp's advice for
# glibc servers). The bare soname lets the loader find it on any architecture.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjemalloc2 \
 && rm -rf /var/lib/apt/lists/*
ENV LD_PRELOAD=libjemalloc.so.2 \
    NODE_ENV=production \
    PORT=8000 \
    HOST=0.0.0.0 \
    MODEL_PATH=/app/models/demo \
    MODEL_DIR=/var/cache/shine/models
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/models/demo ./models/demo
# The S3 model cache: mount a volume here to keep downloads across container restarts. The code
# and the demo model stay root-owned and read-only for the app.
RUN mkdir -p /var/cache/shine/models && chown -R node:node /var/cache/shine
USER node
EXPOSE 8000
# Liveness, not readiness: /health is 503 while a large model downloads, which is not a reason to
# restart the container. No curl in slim images; Node's fetch does it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node runs as PID 1 without an init: src/server.ts handles SIGTERM/SIGINT itself (drain, close
# the pool, exit 0) and the app spawns no child processes that would need reaping.
CMD ["node", "--require", "./dist/preload.cjs", "--enable-source-maps", "--initial-old-space-size=256", "dist/server.js"]
