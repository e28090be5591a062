#!/bin/sh
# Test handler: appends the batch (JSON Lines on stdin) to the file named by
# its first argument, one line per message.
set -eu
cat >> "$1"
