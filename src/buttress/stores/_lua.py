"""Lua functions the stores' scripts share, written once and prepended to each script."""

from __future__ import annotations

__all__ = ["CLOCK", "WINDOW_TOTALS"]

# The time a script runs at, in epoch seconds: the time it was given (a test's clock,
# see RedisStore.time_argument), or the Redis server's TIME when given "", so every
# process of a fleet is timed by one clock.
CLOCK = """
local function clock(given)
  local now = tonumber(given)
  if now then return now end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

# A rate window kept in a hash of buckets: each field is a one-letter kind and the
# bucket's number ('f12' is bucket 12's failures), each value a count. Adds each kind's
# counts into ``totals`` (which names the kinds, at 0), deleting the buckets numbered
# ``oldest`` or less on the way: they have left the window.
WINDOW_TOTALS = """
local function window_totals(key, oldest, totals)
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    if tonumber(string.sub(fields[i], 2)) <= oldest then
      redis.call('HDEL', key, fields[i])
    else
      local kind = string.sub(fields[i], 1, 1)
      totals[kind] = totals[kind] + tonumber(fields[i + 1])
    end
  end
  return totals
end
"""
