# hold-step (laid over node-hello): holds a deploy step open for fault-injection tests. When the file
# HOLD names this step, it says so in $SLIPWAY_DATA/holding-STEP and waits (bounded) instead of going on.
if [ "$(cat HOLD 2>/dev/null)" = "$1" ]; then
  echo "holding the $1 step"
  touch "$SLIPWAY_DATA/holding-$1"
  sleep 300
fi
