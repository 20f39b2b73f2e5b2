// .ebextensions, nginx/ and the app's defaults hold one chain of timeouts and one port: read all
// three and check they agree, so changing one side alone fails here rather than on Elastic Beanstalk.
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { Readiness } from '../../src/readiness.js'
import { REPO_ROOT } from '../helpers/nginx.js'

type Options = Map<string, string>

async function ebOptions (): Promise<{ options: Options, files: string[] }> {
  const dir = join(REPO_ROOT, '.ebextensions')
  const files = (await readdir(dir)).sort()
  const options: Options = new Map()
  for (const file of files) {
    const doc = parse(await readFile(join(dir, file), 'utf8')) as { option_settings: Record<string, Record<string, unknown>> }
    for (const [namespace, settings] of Object.entries(doc.option_settings)) {
      for (const [name, value] of Object.entries(settings)) {
        const key = `${namespace}/${name}`
        if (options.has(key)) throw new Error(`${key} is set twice in .ebextensions`)
        options.set(key, String(value))
      }
    }
  }
  return { options, files }
}

async function nginxText (): Promise<string> {
  return (await readFile(join(REPO_ROOT, 'nginx', 'nginx.conf'), 'utf8')) +
    (await readFile(join(REPO_ROOT, 'nginx', 'conf.d', 'elasticbeanstalk', '00_application.conf'), 'utf8'))
}

/** Seconds of a directive, e.g. `keepalive_timeout 975s;`; the one occurrence after `after`. */
function seconds (conf: string, directive: string, after = ''): number {
  const from = conf.indexOf(after)
  const matches = [...conf.slice(from).matchAll(new RegExp(`^\\s*${directive}\\s+(\\d+)s?;`, 'gm'))]
  if (matches.length === 0) throw new Error(`${directive} not found`)
  return Number(matches[0]?.[1])
}

t.test('the Elastic Beanstalk settings the deployment relies on', async (t) => {
  const { options, files } = await ebOptions()
  t.ok(files.every((f) => f.endsWith('.config')), 'EB reads only *.config files')
  const want: Record<string, string> = {
    'aws:ec2:instances/InstanceTypes': 'm5.2xlarge',
    'aws:elasticbeanstalk:environment/LoadBalancerType': 'application',
    'aws:elasticbeanstalk:environment:process:default/HealthCheckPath': '/health',
    'aws:elasticbeanstalk:application/Application Healthcheck URL': '/health',
    'aws:elasticbeanstalk:healthreporting:system/SystemType': 'enhanced',
    'aws:elasticbeanstalk:command/DeploymentPolicy': 'Immutable',
    'aws:autoscaling:updatepolicy:rollingupdate/RollingUpdateType': 'Immutable',
    'aws:autoscaling:trigger/MeasureName': 'CPUUtilization',
    'aws:elasticbeanstalk:environment:proxy/ProxyServer': 'nginx',
    'aws:elasticbeanstalk:application:environment/ONNXRUNTIME_NODE_INSTALL': 'skip'
  }
  for (const [key, value] of Object.entries(want)) t.equal(options.get(key), value, key)
  t.notOk(options.has('aws:elasticbeanstalk:application:environment/WORKERS'), 'WORKERS unset: every core works')
  t.ok(Number(options.get('aws:autoscaling:trigger/UpperThreshold')) > Number(options.get('aws:autoscaling:trigger/LowerThreshold')),
    'the scale-out threshold is above the scale-in one')

  const env = Object.fromEntries([...options].filter(([k]) => k.startsWith('aws:elasticbeanstalk:application:environment/'))
    .map(([k, v]) => [k.split('/')[1], v]))
  t.doesNotThrow(() => loadConfig(env), 'the environment properties are a valid app configuration')
})

t.test('one port and one chain of timeouts across the ALB, nginx and Node', async (t) => {
  const { options } = await ebOptions()
  const conf = await nginxText()
  const app = loadConfig({ LOG_LEVEL: 'silent' })
  const server = buildApp({ config: app, readiness: new Readiness() })
  t.teardown(async () => await server.close())

  const port = Number(options.get('aws:elasticbeanstalk:application:environment/PORT'))
  t.match(conf, new RegExp(`^\\s*server\\s+127\\.0\\.0\\.1:${port};`, 'm'), `nginx's upstream is the app's PORT (${port})`)

  const albIdle = Number(options.get('aws:elbv2:loadbalancer/IdleTimeout'))
  const drain = Number(options.get('aws:elasticbeanstalk:environment:process:default/DeregistrationDelay'))
  const nginxClientKeepAlive = seconds(conf, 'keepalive_timeout', 'server {')
  const nginxUpstreamKeepAlive = seconds(conf, 'keepalive_timeout', 'upstream app {')
  const requestS = app.requestTimeoutMs / 1000

  for (const d of ['proxy_connect_timeout', 'proxy_send_timeout', 'proxy_read_timeout']) {
    t.equal(seconds(conf, d), requestS, `nginx ${d} = REQUEST_TIMEOUT_S (${requestS} s)`)
  }
  t.ok(albIdle > requestS, `ALB idle timeout ${albIdle} s > ${requestS} s: a silent 900 s analysis is not cut`)
  t.ok(nginxClientKeepAlive > albIdle, `nginx keepalive_timeout ${nginxClientKeepAlive} s > ALB idle ${albIdle} s: the ALB closes idle sockets first`)
  const { keepAliveTimeout, headersTimeout } = server.server
  t.ok(keepAliveTimeout / 1000 > nginxUpstreamKeepAlive, `Node keepAliveTimeout ${keepAliveTimeout / 1000} s > nginx upstream keepalive_timeout ${nginxUpstreamKeepAlive} s`)
  t.ok(headersTimeout > keepAliveTimeout, `Node headersTimeout ${headersTimeout / 1000} s > keepAliveTimeout`)
  t.ok(drain >= requestS, `deregistration delay ${drain} s lets a ${requestS} s request finish`)
  t.ok(drain <= 3600, 'within the target group maximum')
  t.ok(albIdle <= 4000, 'within the ALB maximum')
})
