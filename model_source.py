"""Where the model comes from: the model.bin bundled in the package, or an S3 object.

A model too large for a Lambda zip lives in S3 (MODEL_S3_URI=s3://bucket/key). It is
downloaded once per container into Lambda's writable /tmp, atomically (temporary
name, then rename) and checked against MODEL_SHA256 when given, so a failed or
partial download can never be served.

Beside it, named models that a request may ask for: every NAME.bin in a folder of the package,
and models fetched from an S3 prefix on first use, each with its checksum.
"""

import errno
import hashlib
import logging
import os
import re
import tempfile
import threading
from urllib.parse import urlparse

log = logging.getLogger(__name__)
_MODEL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_NAMED_CHECKSUM = re.compile(r"([A-Za-z0-9_-]{1,64})=([0-9a-fA-F]{64})\Z")


class ModelSourceError(Exception):
    """The model could not be fetched or verified; the message says what is wrong (for the log: it
    names the object), `code` says it in a word for the caller."""

    def __init__(self, message: str, code: str = "download_failed"):
        super().__init__(message)
        self.code = code


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class BundledModel:
    """The model.bin shipped in the deployment package (or any local path)."""

    fetched = True  # always in the package

    def __init__(self, path: str):
        self.path = path

    def local_path(self) -> str:
        return self.path

    kind = "bundled"


class S3Model:
    """A model in S3, fetched on first use into `directory` and reused while the container lives."""

    def __init__(self, uri: str, expected_sha256: str | None = None, directory: str = "/tmp"):
        self.uri = uri
        self.expected_sha256 = expected_sha256.lower() if expected_sha256 else None
        self.path = os.path.join(directory, "model-" + hashlib.sha256(uri.encode()).hexdigest()[:16] + ".bin")
        self.downloads = 0
        self._lock = threading.Lock()
        self._ready = False

    def local_path(self) -> str:
        with self._lock:
            if not self._ready:
                self._download()
                self._ready = True
        return self.path

    @property
    def fetched(self) -> bool:
        """Whether this container has downloaded and verified the model (local_path() does)."""
        return self._ready

    def size(self) -> int:
        """The object's size in bytes, asked of S3 (a HEAD, which s3:GetObject allows)."""
        import boto3  # only needed for S3 models, and part of the Lambda Python runtime
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = self._bucket_and_key()
        try:
            return boto3.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"]
        except ClientError as e:
            raise ModelSourceError(*self._client_error(e)) from None
        except BotoCoreError as e:
            raise ModelSourceError(f"model {self.uri} could not be sized: {e}") from None

    def forget(self) -> None:
        """Delete the downloaded file, to make room in /tmp; the next use fetches it again."""
        with self._lock:
            self._ready = False
            if os.path.exists(self.path):
                os.unlink(self.path)
            log.info("deleted the download of model %s from %s", self.uri, self.path)

    def _bucket_and_key(self) -> tuple[str, str]:
        parsed = urlparse(self.uri)
        if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
            raise ModelSourceError(f"a model in S3 must look like s3://bucket/key, not {self.uri!r}", "bad_uri")
        return parsed.netloc, parsed.path.lstrip("/")

    kind = "s3"

    def _download(self) -> None:
        import boto3  # only needed for S3 models, and part of the Lambda Python runtime
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = self._bucket_and_key()
        partial = None
        try:
            fd, partial = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".model-", suffix=".partial")
            with os.fdopen(fd, "wb") as f:
                boto3.client("s3").download_fileobj(bucket, key, f)
            self._verify(partial)
            os.replace(partial, self.path)
        except ClientError as e:
            raise ModelSourceError(*self._client_error(e)) from None
        except BotoCoreError as e:
            raise ModelSourceError(f"model {self.uri} could not be downloaded: {e}") from None
        except OSError as e:
            # Models in /tmp share Lambda's ephemeral storage (ephemeralStorageSize).
            code = "no_space" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "download_failed"
            raise ModelSourceError(f"model {self.uri} could not be written to {self.path}: {e}", code) from None
        finally:
            if partial and os.path.exists(partial):
                os.unlink(partial)
        self.downloads += 1
        log.info("downloaded model %s to %s", self.uri, self.path)

    def _verify(self, path: str) -> None:
        if self.expected_sha256 is None:
            return
        actual = file_sha256(path)
        if actual != self.expected_sha256:
            log.error("model %s has sha256 %s, expected %s", self.uri, actual, self.expected_sha256)
            raise ModelSourceError(
                f"model {self.uri} failed its checksum: sha256 {actual}, expected {self.expected_sha256}",
                "checksum_mismatch",
            )

    def _client_error(self, error) -> tuple[str, str]:
        """The message and the code for an error S3 answered with."""
        code = str(error.response.get("Error", {}).get("Code", ""))
        log.error("model %s could not be downloaded: %s", self.uri, code)
        if code in {"404", "NoSuchKey", "NoSuchBucket"}:
            return f"model {self.uri} does not exist", "not_found"
        if code in {"403", "AccessDenied"}:
            # Without s3:ListBucket on the bucket, S3 also answers 403 for a key that does not exist.
            return (
                f"reading model {self.uri} was denied; the function's role needs s3:GetObject on it"
                " (a missing object looks the same without s3:ListBucket)"
            ), "access_denied"
        return f"model {self.uri} could not be downloaded ({code or 'unknown error'})", "download_failed"


def model_from_environment(bundled_path: str) -> BundledModel | S3Model:
    """S3Model when MODEL_S3_URI is set, else the bundled model at MODEL_PATH (relative to
    the directory of `bundled_path`) or `bundled_path` itself."""
    uri = os.environ.get("MODEL_S3_URI")
    if uri:
        return S3Model(uri, os.environ.get("MODEL_SHA256"), os.environ.get("MODEL_DOWNLOAD_DIR") or "/tmp")
    return BundledModel(os.path.join(os.path.dirname(bundled_path), os.environ.get("MODEL_PATH") or bundled_path))


def valid_model_name(name: str) -> bool:
    """Whether `name` can name a model: 1 to 64 ASCII letters, digits, `_` or `-`."""
    return _MODEL_NAME.match(name) is not None


def named_models_from_environment(models_dir: str) -> dict[str, BundledModel | S3Model]:
    """The models a request may name, none fetched yet: every NAME.bin in `models_dir`, then, with
    MODELS_S3_PREFIX=s3://bucket/prefix/, each NAME=SHA256 of MODELS_SHA256 (comma-separated) as
    the object prefix + NAME.bin, which must have that checksum. A name in both is the bundled file."""
    models = {}
    if os.path.isdir(models_dir):
        for entry in sorted(os.listdir(models_dir)):
            name, extension = os.path.splitext(entry)
            if extension != ".bin":
                continue
            if valid_model_name(name):
                models[name] = BundledModel(os.path.join(models_dir, entry))
            else:
                log.warning("ignoring %s: a model's name is 1 to 64 letters, digits, _ or -", entry)
    prefix = os.environ.get("MODELS_S3_PREFIX")
    if prefix:
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        directory = os.environ.get("MODEL_DOWNLOAD_DIR") or "/tmp"
        for entry in filter(None, (e.strip() for e in os.environ.get("MODELS_SHA256", "").split(","))):
            match = _NAMED_CHECKSUM.match(entry)
            if match is None:
                log.error("ignoring %r in MODELS_SHA256: each entry is NAME=SHA256 (64 hex digits)", entry)
            elif match[1] in models:
                log.warning("model %s is bundled; the one under %s is not used", match[1], prefix)
            else:
                models[match[1]] = S3Model(prefix + match[1] + ".bin", match[2], directory)
    return models
