#!/usr/bin/env python3
"""A scripted stand-in of SCONE's `scone` CLI for meshfile's tests of its `--scone-cli`
plumbing: the commands meshfile runs and the shapes of what they print (research notes,
sections 1.2 to 1.5), with no cryptography at all. Each call is appended to the file named by
SCONE_STANDIN_LOG."""
import base64
import hashlib
import json
import os
import sys

args = sys.argv[1:]
log = os.environ.get("SCONE_STANDIN_LOG")
if log:
    with open(log, "a") as f:
        f.write(" ".join(args) + "\n")
path = args[-1]
with open(path, "rb") as f:
    data = f.read()

if args[:2] == ["session", "sign"]:
    try:
        signed = json.loads(data)
        signed["signatures"].append({"signer": "STANDIN-SECOND", "signature": "ab" * 64})
    except ValueError:
        # SCONE re-writes the session it signs and names the signer as its creator.
        session = "---\n" + data.decode() + "creator:\n  signer: STANDIN\n"
        signed = {"session": session, "signatures": [{"signer": "STANDIN", "signature": "cd" * 64}]}
    print(json.dumps(signed))
elif args[:2] == ["session", "encrypt"] and args[2] == "--key":
    print(json.dumps({"encrypted_session": base64.b64encode(data).decode(), "encryption_key": args[3]}))
elif args[:2] == ["session", "calculate-hash"]:
    session = json.loads(data)["session"]
    print(hashlib.sha256(("standin " + session).encode()).hexdigest())
else:
    print("scone stand-in: unknown command " + " ".join(args), file=sys.stderr)
    sys.exit(2)
