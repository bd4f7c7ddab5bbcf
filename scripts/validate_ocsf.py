#!/usr/bin/env python3
"""Validates OCSF records (JSON lines, as `pci-mesh-guard export --format ocsf` writes them) against
the OCSF schema of the version each record's metadata names, as JSON Schema generated offline by
the pinned `ocsf-json-schema` package, with the profiles the record declares.

usage: validate_ocsf.py FILE        prints one line per class and `N records valid`; exit 1 if not
"""
import collections
import json
import sys

import jsonschema
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema


def main(path):
    schemas, validators = {}, {}
    counts = collections.Counter()
    errors = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            record = json.loads(line)
            meta = record.get("metadata", {})
            version = meta.get("version")
            profiles = tuple(sorted(meta.get("profiles", [])))
            if version not in schemas:
                schemas[version] = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
            ocsf = schemas[version]
            class_name = ocsf.lookup_class_name_from_uid(class_uid=record.get("class_uid"))
            # A profile applies to the classes that use it; a finding names the profile of the
            # HTTP Activity record it comes from.
            key = (version, class_name, profiles)
            if key not in validators:
                applied = [p for p in profiles if class_name == "http_activity"]
                schema = ocsf.get_class_schema(class_name=class_name, profiles=applied)
                jsonschema.Draft202012Validator.check_schema(schema)
                validators[key] = jsonschema.Draft202012Validator(schema)
            found = sorted(validators[key].iter_errors(record), key=lambda e: list(e.path))
            for e in found:
                where = "/".join(str(p) for p in e.absolute_path) or "(record)"
                errors.append(f"{path}:{n}: {class_name}: {where}: {e.message}")
            counts[(version, class_name)] += 1
    for (version, class_name), k in sorted(counts.items()):
        print(f"OCSF {version} {class_name}: {k} records")
    for e in errors:
        print(e)
    total = sum(counts.values())
    if errors or total == 0:
        print(f"{len(errors)} errors in {total} records")
        return 1
    print(f"{total} records valid")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
