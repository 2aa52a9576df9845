/* version.c: asyncjob_version(), AC_INIT's version as this library was built with it. */
#include "config.h"

#include "asyncjob.h"

ASYNCJOB_API const char *asyncjob_version(void)
{
    return ASYNCJOB_VERSION_STRING;
}
