// Checks of serverless.yml's model params, run when the configuration is resolved, so that
// `serverless package` and `deploy` refuse a bad value with a clear message instead of
// shipping a function that cannot load its model, or a stack that CloudFormation rolls back.
'use strict';

const fs = require('fs');
const path = require('path');

const FASTTEXT_MAGIC = 793712314; // the first int32 of every fastText .bin model

// The message alone: the Serverless CLI prints an Error's stack, which would bury it.
function refuse(message) {
  const error = new Error(message);
  error.stack = message;
  throw error;
}

async function modelS3Uri({ resolveVariable }) {
  const uri = await resolveVariable("param:modelS3Uri, env:MODEL_S3_URI, ''");
  if (uri && !/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/[^\s]+$/.test(uri)) {
    refuse(`modelS3Uri must look like s3://bucket/key (a bucket name and an object key), not '${uri}'`);
  }
  return uri;
}

async function modelSha256({ resolveVariable }) {
  const digest = await resolveVariable("param:modelSha256, env:MODEL_SHA256, ''");
  if (digest && !/^[0-9a-f]{64}$/i.test(digest)) {
    refuse(`modelSha256 must be the model's sha256 as 64 hex digits (sha256sum prints it), not '${digest}'`);
  }
  return digest.toLowerCase();
}

// The bundled model: a fastText model file inside the service directory, as a relative path
// (the function finds it relative to its package root, and the zip keeps the same path).
async function bundledModel({ resolveVariable }) {
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

// The kind of API: rest or http. API keys and usage plans exist only on REST APIs, so an HTTP API
// asked to require keys is refused rather than deployed open.
async function apiType({ resolveVariable }) {
  const type = await resolveVariable('param:apiType');
  if (type !== 'rest' && type !== 'http') {
    refuse(`apiType must be rest or http, not '${type}'`);
  }
  const keysRequired = ['true', '1'].includes(String(await resolveVariable('param:apiKeyRequired')));
  if (type === 'http' && keysRequired) {
    refuse('apiKeyRequired=true needs apiType=rest: HTTP APIs have no API keys or usage plans ' +
      '(docs/DEPLOYMENT.md, "REST API or HTTP API")');
  }
  return type;
}

module.exports = { modelS3Uri, modelSha256, bundledModel, apiType };
