"""Checks SignedPolicy/EncryptedPolicy resources against the CRDs' schemas, strictly (an
unknown field is an error, as the API server's pruning would drop it silently). Run with the
Python that kubernetes-validate brings (it has jsonschema and PyYAML): an independent check of
what meshfile writes. Usage: check_policy_resources.py CRD CRD MANIFESTS; prints how many
resources passed."""
import sys

import jsonschema
import yaml


def strict(schema):
    if schema.get("type") == "object" and "properties" in schema:
        schema["additionalProperties"] = False
    for sub in schema.get("properties", {}).values():
        strict(sub)
    if "items" in schema:
        strict(schema["items"])


schemas = {}
for path in sys.argv[1:3]:
    with open(path) as f:
        crd = yaml.safe_load(f)
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    strict(schema)
    key = (crd["spec"]["group"] + "/" + version["name"], crd["spec"]["names"]["kind"])
    schemas[key] = schema

checked = 0
with open(sys.argv[3]) as f:
    for doc in yaml.safe_load_all(f):
        if not doc or not str(doc.get("apiVersion", "")).startswith("cas.scone.cloud/"):
            continue
        jsonschema.validate(doc, schemas[(doc["apiVersion"], doc["kind"])])
        checked += 1
print(checked)
