# Rule tests for python.yml in semgrep's --test format: "ruleid:" marks a line the rule must
# flag, "ok:" a line it must not. Run: semgrep --test --metrics=off dex_tasks/rules
# This file is never imported; it is excluded from `dex-tasks security` scans. It is bad code on
# purpose, so linters skip it entirely:
# ruff: noqa: INP001, ERA001, PTH123, SIM115, UP031, S102, S104, S105, S106, S113, S201, S301, S302, S306, S307, S324, S501, S506, S602, S605
# mypy: ignore-errors
import asyncio
import builtins
import hashlib
import marshal
import os
import pickle
import subprocess
import tempfile

import flask
import requests
import ruamel.yaml
import uvicorn
import yaml
from fastapi import FastAPI
from ruamel.yaml import YAML

ref = os.environ["REF"]

# ruleid: dex-subprocess-shell
subprocess.run(f"git log {ref}", shell=True, check=True)
# ruleid: dex-subprocess-shell
subprocess.check_output(["ls"], shell=True)
# ruleid: dex-subprocess-shell
os.system("make deploy")
# ruleid: dex-subprocess-shell
os.popen("uname -a")
# ruleid: dex-subprocess-shell
asyncio.create_subprocess_shell("ls")
# ok: dex-subprocess-shell
subprocess.run(["git", "log", ref], check=True)
# ok: dex-subprocess-shell
subprocess.run(["git", "status"], shell=False, check=True)

# ruleid: dex-subprocess-string-command
subprocess.run("git status", check=True)
# ruleid: dex-subprocess-string-command
subprocess.check_output(f"git log {ref}")
# ruleid: dex-subprocess-string-command
subprocess.Popen("docker build -t %s ." % ref)
# ruleid: dex-subprocess-string-command
subprocess.call("git checkout " + ref)
# ok: dex-subprocess-string-command
subprocess.run(["docker", "build", "-t", ref, "."], check=True)

# ruleid: dex-requests-no-timeout
requests.get("https://api.github.com/repos/o/r")
# ruleid: dex-requests-no-timeout
requests.post("https://example.invalid/hook", json={"a": 1})
# ok: dex-requests-no-timeout
requests.get("https://api.github.com/repos/o/r", timeout=(5, 30))
# ok: dex-requests-no-timeout
requests.request("GET", "https://example.invalid", timeout=10)

# ruleid: dex-requests-verify-false
requests.get("https://internal.invalid", timeout=5, verify=False)
session = requests.Session()
# ruleid: dex-requests-verify-false
session.verify = False
# ok: dex-requests-verify-false
requests.get("https://internal.invalid", timeout=5, verify="/etc/ssl/ca.pem")

data = open("kustomization.yaml").read()
# ruleid: dex-yaml-unsafe-load
yaml.load(data)
# ruleid: dex-yaml-unsafe-load
yaml.load(data, Loader=yaml.Loader)
# ruleid: dex-yaml-unsafe-load
yaml.unsafe_load(data)
# ruleid: dex-yaml-unsafe-load
YAML(typ="unsafe")
# ok: dex-yaml-unsafe-load
yaml.safe_load(data)
# ok: dex-yaml-unsafe-load
yaml.load(data, Loader=yaml.SafeLoader)
# ok: dex-yaml-unsafe-load
ruamel.yaml.YAML(typ="safe")

# ruleid: dex-unsafe-deserialization
pickle.loads(requests.get("https://cache.invalid/x", timeout=5).content)
# ruleid: dex-unsafe-deserialization
marshal.load(open("cache.bin", "rb"))
# ok: dex-unsafe-deserialization
pickle.dumps({"a": 1})

expression = input()
# ruleid: dex-eval-exec
eval(expression)
# ruleid: dex-eval-exec
exec(compile(expression, "<input>", "exec"))
# ruleid: dex-eval-exec
builtins.eval(expression)
# ok: dex-eval-exec
eval("1 + 1")

# ruleid: dex-hardcoded-secret
password = "hunter2-but-longer"
# ruleid: dex-hardcoded-secret
GITHUB_TOKEN = "0123456789abcdef0123456789abcdef"
# ruleid: dex-hardcoded-secret
requests.get("https://api.invalid", timeout=5, headers={"api_key": "s3cr3t-value-123"})
# ruleid: dex-hardcoded-secret
flask.Flask(__name__).config.update(secret_key="dev-secret-key-1")
# ok: dex-hardcoded-secret
password = os.environ["DB_PASSWORD"]
# ok: dex-hardcoded-secret
token_env = "GITHUB_TOKEN"
# ok: dex-hardcoded-secret
password = ""
# ok: dex-hardcoded-secret
token = "<your token here>"
# ok: dex-hardcoded-secret
token_file = "secrets/token.txt"
# ok: dex-hardcoded-secret
token = "${GITHUB_TOKEN}"

# ruleid: dex-token-literal
auth = "ghp_0123456789abcdefghijABCDEFGHIJ012345"
# ruleid: dex-token-literal
aws = "AKIAIOSFODNN7EXAMPLE"
# ruleid: dex-token-literal
key = "-----BEGIN RSA PRIVATE KEY-----"
# ok: dex-token-literal
prefix = "ghp_"

# ruleid: dex-tempfile-mktemp
path = tempfile.mktemp(suffix=".json")
# ok: dex-tempfile-mktemp
handle = tempfile.NamedTemporaryFile(suffix=".json")

# ruleid: dex-weak-hash
hashlib.md5(b"password").hexdigest()
# ruleid: dex-weak-hash
hashlib.sha1(b"signature")
# ruleid: dex-weak-hash
hashlib.new("md5", b"x")
# ok: dex-weak-hash
hashlib.md5(b"cache-key", usedforsecurity=False).hexdigest()
# ok: dex-weak-hash
hashlib.sha256(b"signature")

app = flask.Flask(__name__)
# ruleid: dex-web-debug-enabled
app.run(host="0.0.0.0", debug=True)
# ruleid: dex-web-debug-enabled
app.debug = True
# ruleid: dex-web-debug-enabled
api = FastAPI(debug=True)
# ok: dex-web-debug-enabled
app.run(debug=os.environ.get("APP_DEBUG") == "1")
# ok: dex-web-debug-enabled
api = FastAPI(title="dex")

# ruleid: dex-uvicorn-reload
uvicorn.run("app:api", reload=True)
# ok: dex-uvicorn-reload
uvicorn.run("app:api", host="0.0.0.0", port=8000)
