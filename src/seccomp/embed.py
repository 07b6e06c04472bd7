#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Make kiln's built-in seccomp filters (a JSON file) into a C string: embed.py IN OUT."""
import json
import sys

text = open(sys.argv[1], encoding="utf-8").read()
json.loads(text)  # a broken file fails the build, not kiln's start
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write("/* Generated from %s by src/seccomp/embed.py. */\n" % sys.argv[1].split("/src/")[-1])
    out.write("extern const char seccomp_default_json[];\n")
    out.write("const char seccomp_default_json[] =\n")
    for line in text.splitlines():
        out.write('\t"%s\\n"\n' % line.replace("\\", "\\\\").replace('"', '\\"'))
    out.write(";\n")
