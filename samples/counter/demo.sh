#!/usr/bin/env bash
echo "demo: samples/counter needs the reconcile engine, which is not built yet" >&2
exit 1
