/* debug_link.h: a job's links in the debuggers' list of jobs, alone, so that the job struct
 * (pool.h) can hold them without the registry (debug_registry.h), which reads the job. */
#ifndef ASYNCJOB_DEBUG_LINK_H
#define ASYNCJOB_DEBUG_LINK_H

/* The list is circular through the descriptor's head (struct debug_registry). */
struct debug_link {
    struct debug_link *next;
    struct debug_link *prev;
};

#endif /* ASYNCJOB_DEBUG_LINK_H */
