#!/bin/sh
# Test handler: writes the batch to the file named by its first argument,
# then sleeps until it is stopped. The file tells the test a batch is running.
cat > "$1.tmp" && mv "$1.tmp" "$1"
exec sleep 600
