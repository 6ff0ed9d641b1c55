#!/bin/bash
# STAND-IN for core's /opt/start.sh (stand-in image, standin_images/build.sh).
exec python3 /opt/standin/core.py
