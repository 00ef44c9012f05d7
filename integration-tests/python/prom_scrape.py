"""Scrapes a Prometheus endpoint and parses it with prometheus_client's text-format parser
(the reference parser: a line Prometheus would reject makes it raise). Prints one JSON line:
{"content_type": "...", "families": {name: type}, "samples": [[name, {labels}, value], ...]}

usage: prom_scrape.py URL
"""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

url = sys.argv[1]
with urllib.request.urlopen(url, timeout=30) as resp:
    content_type = resp.headers.get("Content-Type", "")
    text = resp.read().decode("utf-8")

families = {}
samples = []
for family in text_string_to_metric_families(text):
    families[family.name] = family.type
    for s in family.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps({"content_type": content_type, "families": families, "samples": samples}))
