#!/bin/sh
# Test handler: reads the batch and fails it.
cat > /dev/null
echo "fail.sh: refusing the batch" >&2
exit 3
