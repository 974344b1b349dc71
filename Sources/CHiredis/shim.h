// hiredis from Debian (libhiredis-dev): command formatting and RESP reply parsing.
#include <hiredis/hiredis.h>
