"""Process-wide interpreter settings that libraries must not be allowed to loosen."""

import sys

# Python's default. Deep enough for any code of ours and our libraries, and shallow enough that C code which
# recurses per Python frame (the json parser, repr, pickle) raises RecursionError long before it runs off the
# C stack of a thread (8 MB for the main thread here, less for some servers' threads).
RECURSION_LIMIT = 1000


def recursion_limit_restore(limit=RECURSION_LIMIT):
    """Lower the recursion limit back to `limit` if an import raised it (py_ecc, imported by eth_account, sets
    100,000 for the whole process: a 100,000-deep JSON body then kills the process with SIGSEGV instead of
    raising RecursionError). Returns the limit that was found."""
    found = sys.getrecursionlimit()
    if found > limit:
        sys.setrecursionlimit(limit)
    return found
