#!/bin/sh
# Test handler: writes its working directory and $GREETING to the file named
# by its first argument.
cat > /dev/null
printf '%s|%s\n' "$(pwd)" "$GREETING" > "$1"
