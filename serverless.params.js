// What serverless.yml cannot say plainly: the choices made from its params, as functions with
// plain `if`s, run when the configuration is resolved (`${file(./serverless.params.js):name}`), so
// that `serverless package` and `deploy` refuse a bad value with a clear message instead of shipping
// a function that cannot load its model, or a stack that CloudFormation rolls back. And a plugin
// (this module's export itself; serverless.yml lists it under plugins) that checks the packaged
// zip against Lambda's size limits and says how much room is left.
'use strict';

const fs = require('fs');
const path = require('path');

const FASTTEXT_MAGIC = 793712314; // the first int32 of every fastText .bin model
const ARCHITECTURES = {
  x86_64: { binary: 'fasttext', pipPlatform: 'manylinux2014_x86_64' },
  arm64: { binary: 'fasttext-arm64', pipPlatform: 'manylinux2014_aarch64' },
};
const MODEL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
// Lambda's limits for a zip uploaded directly, and for the function unzipped (layers included).
const MAX_ZIPPED_BYTES = 50 * 1024 * 1024;
const MAX_UNZIPPED_BYTES = 250 * 1024 * 1024;
const MB = 1024 * 1024;
// The fastText processes may use half of the function's memory together (served_models.py); a
// model runs up to three (answering with 5 labels, with 50, and with every label), each about its
// file, 160 bytes a word of its dictionary, and the 2 MiB binary.
const BYTES_PER_WORD = 160;
const BINARY_BYTES = 2 * MB;

// The message alone: the Serverless CLI prints an Error's stack, which would bury it.
function refuse(message) {
  const error = new Error(message);
  error.stack = message;
  throw error;
}

async function flag(resolveVariable, name) {
  const value = String(await resolveVariable(`param:${name}`));
  if (!['true', 'false', '1', '0'].includes(value)) refuse(`${name} must be true or false, not '${value}'`);
  return value === 'true' || value === '1';
}

async function architecture({ resolveVariable }) {
  const name = await resolveVariable('param:architecture');
  if (!ARCHITECTURES[name]) refuse(`architecture must be x86_64 or arm64, not '${name}'`);
  return ARCHITECTURES[name];
}

async function modelS3Uri(resolveVariable) {
  const uri = await resolveVariable("param:modelS3Uri, env:MODEL_S3_URI, ''");
  if (uri && !/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/[^\s]+$/.test(uri)) {
    refuse(`modelS3Uri must look like s3://bucket/key (a bucket name and an object key), not '${uri}'`);
  }
  return uri;
}

async function modelSha256(resolveVariable) {
  const digest = await resolveVariable("param:modelSha256, env:MODEL_SHA256, ''");
  if (digest && !/^[0-9a-f]{64}$/i.test(digest)) {
    refuse(`modelSha256 must be the model's sha256 as 64 hex digits (sha256sum prints it), not '${digest}'`);
  }
  return digest.toLowerCase();
}

// Named models in S3: a prefix (s3://bucket/prefix/), and NAME=SHA256 for each model there, which
// the function fetches as prefix + NAME.bin on the first request that names it.
async function namedS3Models(resolveVariable) {
  let prefix = await resolveVariable("param:modelsS3Prefix, env:MODELS_S3_PREFIX, ''");
  const checksums = await resolveVariable("param:modelsSha256, env:MODELS_SHA256, ''");
  if (!prefix && !checksums) return null;
  if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/[^\s]*$/.test(prefix)) {
    refuse(`modelsS3Prefix must look like s3://bucket/prefix/ when modelsSha256 is given, not '${prefix}'`);
  }
  if (!prefix.endsWith('/')) prefix += '/';
  const entries = checksums.split(',').map((entry) => entry.trim()).filter(Boolean);
  if (!entries.length) refuse('modelsS3Prefix needs modelsSha256: NAME=SHA256 for each model under it, comma-separated');
  const names = [];
  for (const entry of entries) {
    const [name, digest] = entry.split('=');
    if (!MODEL_NAME.test(name || '') || !/^[0-9a-f]{64}$/i.test(digest || '')) {
      refuse(`modelsSha256 entries are NAME=SHA256 (a name of 1 to 64 letters, digits, _ or -, and 64 hex digits), not '${entry}'`);
    }
    names.push(name);
  }
  return { prefix, checksums: entries.join(','), names };
}

// The bundled model: a fastText model file inside the service directory, as a relative path
// (the function finds it relative to its package root, and the zip keeps the same path).
async function bundledModel(resolveVariable) {
  const given = await resolveVariable("param:model, 'model.bin'");
  const serviceDir = process.cwd();
  const relative = path.relative(serviceDir, path.resolve(serviceDir, given));
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    refuse(`model '${given}' is outside the service directory ${serviceDir}: copy it inside (models/, say)`);
  }
  let header;
  try {
    const fd = fs.openSync(relative, 'r');
    header = Buffer.alloc(4);
    fs.readSync(fd, header, 0, 4, 0);
    fs.closeSync(fd);
  } catch (error) {
    refuse(`model '${given}' cannot be read (${error.code}): train one with make train, or name another with model=PATH`);
  }
  if (header.readInt32LE(0) !== FASTTEXT_MAGIC) {
    refuse(`model '${given}' is not a fastText model (.bin or .ftz)`);
  }
  return relative.split(path.sep).join('/');
}

// The first 76 bytes of a model file (magic, version, args, the dictionary's size and word count),
// refused when they are not a fastText model's.
function modelHeader(file) {
  const header = Buffer.alloc(76);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, header, 0, header.length, 0);
  fs.closeSync(fd);
  if (header.readInt32LE(0) !== FASTTEXT_MAGIC) {
    refuse(`model '${file}' is not a fastText model (.bin or .ftz)`);
  }
  return header;
}

// The memory one process of a bundled model needs once loaded (served_models.py's estimate).
function processBytes(file) {
  return fs.statSync(file).size + BYTES_PER_WORD * Math.max(modelHeader(file).readInt32LE(68), 0) + BINARY_BYTES;
}

// Refuse a deployment whose bundled models (the default one, and models/*.bin) cannot run their
// three processes within half of memorySize. Models in S3 are sized when the function fetches them.
async function checkModelsFitMemory(resolveVariable, bundled) {
  const memory = Number(await resolveVariable('param:memorySize'));
  const files = bundled ? [bundled] : [];
  if (fs.existsSync('models')) {
    files.push(...fs.readdirSync('models').filter((f) => f.endsWith('.bin')).map((f) => `models/${f}`));
  }
  for (const file of files) {
    const needed = 3 * processBytes(file);
    if (needed > (memory * MB) / 2) {
      refuse(`model '${file}' needs about ${Math.ceil(needed / MB)} MB for its three fastText processes, more than ` +
        `half of memorySize=${memory}: raise memorySize to at least ${Math.ceil((2 * needed) / MB)} ` +
        '(docs/DEPLOYMENT.md, "Memory size and cost")');
    }
  }
}

// arn:PARTITION:s3:::bucket/key, for CloudFormation to complete.
function s3ObjectArn(bucketAndKey) {
  return { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::', bucketAndKey]] };
}

// The function's model environment: the bundled model's path, or the default model's S3 URI (and
// checksum); and the named models' S3 prefix and checksums when given.
async function modelEnvironment({ resolveVariable }) {
  const uri = await modelS3Uri(resolveVariable);
  const digest = await modelSha256(resolveVariable); // checked even when unused: a typo is refused
  const environment = {};
  if (uri) {
    if (!digest) {
      refuse('modelS3Uri needs modelSha256 (or env MODEL_SHA256): the sha256 of the object, as sha256sum prints ' +
        'it, so that the function serves that file and no other');
    }
    environment.MODEL_S3_URI = uri;
    environment.MODEL_SHA256 = digest;
  } else {
    environment.MODEL_PATH = await bundledModel(resolveVariable);
  }
  await checkModelsFitMemory(resolveVariable, environment.MODEL_PATH);
  const named = await namedS3Models(resolveVariable);
  if (named) {
    environment.MODELS_S3_PREFIX = named.prefix;
    environment.MODELS_SHA256 = named.checksums;
  }
  return environment;
}

// Beyond the CloudWatch Logs statements Serverless always adds: nothing for bundled models,
// s3:GetObject on exactly the model objects in S3.
async function modelStatements({ resolveVariable }) {
  const objects = [];
  const uri = await modelS3Uri(resolveVariable);
  if (uri) objects.push(uri.slice('s3://'.length));
  const named = await namedS3Models(resolveVariable);
  if (named) {
    for (const name of named.names) objects.push(`${named.prefix.slice('s3://'.length)}${name}.bin`);
  }
  if (!objects.length) return [];
  return [{ Effect: 'Allow', Action: 's3:GetObject', Resource: objects.map(s3ObjectArn) }];
}

// What ships in the zip: package-files.txt, then the fastText binary of the architecture and the
// default model (left out when it comes from S3).
async function packagePatterns(context) {
  const listed = fs.readFileSync(path.join(__dirname, 'package-files.txt'), 'utf8')
    .split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  const { binary } = await architecture(context);
  const uri = await modelS3Uri(context.resolveVariable);
  return [...listed, binary, uri ? '!model.bin' : await bundledModel(context.resolveVariable)];
}

// The way in: rest (API Gateway REST API), http (HTTP API) or url (a Lambda function URL, no API
// Gateway). API keys and usage plans exist only on REST APIs, so the others asked to require keys
// are refused rather than deployed open.
async function apiType({ resolveVariable }) {
  const type = await resolveVariable('param:apiType');
  if (!['rest', 'http', 'url'].includes(type)) {
    refuse(`apiType must be rest, http or url, not '${type}'`);
  }
  if (type !== 'rest' && (await flag(resolveVariable, 'apiKeyRequired'))) {
    refuse(`apiKeyRequired=true needs apiType=rest: ${type === 'http' ? 'HTTP APIs' : 'function URLs'} have no ` +
      'API keys or usage plans (docs/DEPLOYMENT.md, "REST API, HTTP API or function URL")');
  }
  if (type === 'url') await urlAuth(resolveVariable);
  return type;
}

async function urlAuth(resolveVariable) {
  const auth = await resolveVariable('param:urlAuth');
  if (auth !== 'iam' && auth !== 'none') refuse(`urlAuth must be iam or none, not '${auth}'`);
  return auth;
}

// The routes, the same on both kinds of API. Each path takes ANY method, so that a wrong one
// reaches the function and gets its JSON 405 with an Allow header; CORS preflights (OPTIONS) are
// answered by API Gateway itself. The page and the contract need no API key, whatever
// apiKeyRequired says: a browser cannot send one to open the page (the page sends the key it is
// given to the other routes). A function URL sends every path to the function: no events.
async function apiEvents(context) {
  const type = await apiType(context);
  if (type === 'rest') {
    const keyed = await flag(context.resolveVariable, 'apiKeyRequired');
    return [
      { http: { path: 'recommendations', method: 'any', cors: true, private: keyed } },
      { http: { path: 'health', method: 'any', cors: true, private: keyed } },
      { http: { path: 'openapi.json', method: 'any', cors: true } },
      { http: { path: '/', method: 'any', cors: true } },
    ];
  }
  if (type === 'http') {
    return ['/', '/recommendations', '/health', '/openapi.json'].map((route) => ({ httpApi: { path: route, method: '*' } }));
  }
  return [];
}

// provider.apiGateway: on a REST API with apiKeyRequired, one API key and a usage plan that
// throttles per key (API Gateway applies a usage plan's throttle to requests that carry one of
// its keys). Nothing otherwise.
async function apiGateway(context) {
  if ((await apiType(context)) !== 'rest' || !(await flag(context.resolveVariable, 'apiKeyRequired'))) return {};
  const { resolveVariable } = context;
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  return {
    apiKeys: [{ name: `${service}-${stage}`, description: `Key for the ${service} ${stage} API` }],
    usagePlan: {
      throttle: {
        rateLimit: Number(await resolveVariable('param:throttleRateLimit')),
        burstLimit: Number(await resolveVariable('param:throttleBurstLimit')),
      },
    },
  };
}

// provider.httpApi: an HTTP API answers CORS preflights itself. Nothing for the others
// (serverless offline would otherwise answer the REST routes' preflights the HTTP API's way).
async function httpApi(context) {
  return (await apiType(context)) === 'http' ? { cors: true } : {};
}

// resources: an HTTP API's stage-wide throttle, for all callers together (HttpApiStage is the
// $default stage osls makes for httpApi events).
async function apiResources(context) {
  if ((await apiType(context)) !== 'http') return {};
  const { resolveVariable } = context;
  return {
    extensions: {
      HttpApiStage: {
        Properties: {
          DefaultRouteSettings: {
            ThrottlingRateLimit: Number(await resolveVariable('param:throttleRateLimit')),
            ThrottlingBurstLimit: Number(await resolveVariable('param:throttleBurstLimit')),
          },
        },
      },
    },
  };
}

// functions.tagRecommendations.url: with apiType=url, a function URL (payload format 2.0) that
// callers sign with SigV4 (AWS_IAM), or with urlAuth=none a public one, with CORS so that the page
// works from anywhere; then reserved concurrency is the only cap on what it costs.
async function functionUrl(context) {
  if ((await apiType(context)) !== 'url') return false;
  return (await urlAuth(context.resolveVariable)) === 'iam' ? { authorizer: 'aws_iam' } : { cors: true };
}

// The sizes a zip holds: its own, and the sum of its files' uncompressed sizes, from its central
// directory (the end-of-central-directory record gives where that is and how many entries).
function zipSizes(zipPath) {
  const zip = fs.readFileSync(zipPath);
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) refuse(`${zipPath} is not a zip file`);
  const entries = zip.readUInt16LE(end + 10);
  let offset = zip.readUInt32LE(end + 16);
  let unzipped = 0;
  for (let i = 0; i < entries; i += 1) {
    unzipped += zip.readUInt32LE(offset + 24);
    offset += 46 + zip.readUInt16LE(offset + 28) + zip.readUInt16LE(offset + 30) + zip.readUInt16LE(offset + 32);
  }
  return { zipped: zip.length, unzipped };
}

function megabytes(bytes) {
  return `${(bytes / MB).toFixed(1)} MB`;
}

// After packaging (`serverless package`, and `deploy`, which packages first): refuse a zip over
// Lambda's limits, and say how much room is left under them.
class PackageLimits {
  constructor(serverless, options, { log }) {
    this.hooks = {
      'before:package:finalize': () => {
        const artifact = serverless.service.package.artifact;
        if (!artifact || !fs.existsSync(artifact)) return;
        const { zipped, unzipped } = zipSizes(artifact);
        const summary = `${megabytes(zipped)} zipped (${megabytes(MAX_ZIPPED_BYTES - zipped)} left of Lambda's ` +
          `${megabytes(MAX_ZIPPED_BYTES)} for a direct upload), ${megabytes(unzipped)} unzipped ` +
          `(${megabytes(MAX_UNZIPPED_BYTES - unzipped)} left of ${megabytes(MAX_UNZIPPED_BYTES)})`;
        if (zipped > MAX_ZIPPED_BYTES || unzipped > MAX_UNZIPPED_BYTES) {
          fs.unlinkSync(artifact); // so that no `deploy --package` can ship it
          refuse(`The package is too big for Lambda: ${summary}. Keep large models in S3 (modelS3Uri, ` +
            'modelsS3Prefix; docs/DEPLOYMENT.md), or quantize them.');
        }
        log.notice(`Package: ${summary}`);
      },
    };
  }
}

module.exports = Object.assign(PackageLimits, {
  architecture,
  modelEnvironment,
  modelStatements,
  packagePatterns,
  apiEvents,
  apiGateway,
  httpApi,
  apiResources,
  functionUrl,
});
