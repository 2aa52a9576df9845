# asyncjob-gdb.py: gdb commands for the jobs of a program that uses libasyncjob.
#
#   info asyncjobs         one line per job: number, thread, state, start function, stack
#   asyncjob bt N | all    the backtrace of paused job N, or of every paused job
#
# Everything is read from memory and registers, and nothing in the process changes, so the
# commands work on a live process and on a core file alike. They need no debug information
# for libasyncjob: the library describes the layout of what they read in a descriptor,
# found by its symbol (asyncjob_debug_registry) or, in a library stripped of its symbol
# table, by its section (.asyncjob_debug). gdb loads this file automatically for the
# installed library; load it by hand with "source asyncjob-gdb.py".

import re
import struct

import gdb
import gdb.unwinder

# The descriptor versions this file reads (lib/debug_registry.h, DEBUG_REGISTRY_VERSION).
LAYOUT_VERSION = 1
REGISTRY_SYMBOL = "asyncjob_debug_registry"
REGISTRY_SECTION = ".asyncjob_debug"
# The descriptor's fixed header: magic, byte order, version, size, the idle job's
# active_tid and the pointer size; then, in version 1, 16-bit offsets in this order (the
# names of struct debug_registry's fields).
HEADER = "8sIHHQH"
OFFSETS = ("job_link", "job_serial", "job_lwp", "job_owner", "job_func",
           "job_active_tid", "job_ctx", "job_stack_lo", "job_stack_size",
           "thread_current", "registry_head", "registry_count", "registry_layout")
MAX_FRAMES = 256


class Registry:
    """The descriptor of the selected inferior's libasyncjob, decoded."""

    def __init__(self, address):
        self.inferior = gdb.selected_inferior()
        head = self.read(address, struct.calcsize("<" + HEADER))
        if head[:8] != b"asyncjob":
            raise gdb.GdbError("asyncjob: no job registry at 0x%x (bad magic)" % address)
        self.order = "<" if head[8:12] == b"\x01\x02\x03\x04" else ">"
        _, _, version, size, self.not_active, self.ptr = struct.unpack_from(
            self.order + HEADER, head)
        if version != LAYOUT_VERSION:
            raise gdb.GdbError("asyncjob: the library's job registry has layout version %d;"
                               " this extension reads version %d" % (version, LAYOUT_VERSION))
        raw = self.read(address, size)
        table = struct.unpack_from(self.order + "%dH" % len(OFFSETS), raw, len(head))
        self.off = dict(zip(OFFSETS, table))
        layout = raw[self.off["registry_layout"]:].split(b"\0", 1)[0].decode()
        self.layout = [re.match(r"(\w+)([@=])(\d+)$", t).groups() for t in layout.split()]
        self.job_span = max(v for k, v in self.off.items() if k.startswith("job_")) + 8
        self.head = address + self.off["registry_head"]
        self.count = self.u64(address + self.off["registry_count"])

    def read(self, address, size):
        return bytes(self.inferior.read_memory(address, size))

    def u64(self, address):
        return struct.unpack(self.order + "Q", self.read(address, 8))[0]

    def i32(self, address):
        return struct.unpack(self.order + "i", self.read(address, 4))[0]

    def field(self, raw, name, kind):
        """Field `name` of a structure read into `raw`: kind "Q", "i" or "P" (pointer)."""
        if kind == "P":
            kind = "Q" if self.ptr == 8 else "I"
        return struct.unpack_from(self.order + kind, raw, self.off[name])[0]

    def pointer(self, address):
        return struct.unpack(self.order + ("Q" if self.ptr == 8 else "I"),
                             self.read(address, self.ptr))[0]

    def links(self):
        """Every job's address, in creation order. The walk is bounded and checks the
        back links, since a core file may have been taken in the middle of an update."""
        link, seen, found = self.pointer(self.head), 0, []
        try:
            while link != self.head:
                if seen > self.count or self.pointer(link + self.ptr) == 0:
                    break
                found.append(link - self.off["job_link"])
                prev, link, seen = link, self.pointer(link), seen + 1
                if self.pointer(link + self.ptr) != prev:
                    break
        except gdb.MemoryError:
            pass
        if link != self.head:
            print("asyncjob: the job list is damaged or unreadable after %d jobs" % seen)
        return found


def find_registry():
    """The registry of the selected inferior, by symbol, else by section."""
    if gdb.selected_inferior().pid == 0:
        raise gdb.GdbError("asyncjob: no process: run the program, attach to it or open a"
                           " core file")
    try:
        return Registry(int(gdb.parse_and_eval("(unsigned long)&'%s'" % REGISTRY_SYMBOL)))
    except gdb.error:
        pass
    files = gdb.execute("info files", to_string=True)
    m = re.search(r"(0x[0-9a-f]+) - 0x[0-9a-f]+ is %s\b" % re.escape(REGISTRY_SECTION), files)
    if m is None:
        raise gdb.GdbError("asyncjob: libasyncjob is not loaded in this process"
                           " (no %s symbol or %s section)" % (REGISTRY_SYMBOL, REGISTRY_SECTION))
    return Registry(int(m.group(1), 16))


class Job:
    """One job as the registry shows it, read in one piece."""

    def __init__(self, reg, address, threads):
        raw = reg.read(address, reg.job_span)
        self.reg, self.address = reg, address
        self.number = reg.field(raw, "job_serial", "Q")
        self.lwp = reg.field(raw, "job_lwp", "i")
        self.thread = threads.get(self.lwp)
        self.func = reg.field(raw, "job_func", "P")
        self.ctx = reg.field(raw, "job_ctx", "P")
        self.lo = reg.field(raw, "job_stack_lo", "P")
        self.top = self.lo + reg.field(raw, "job_stack_size", "P")
        self.state = "paused"
        if reg.field(raw, "job_active_tid", "Q") == reg.not_active:
            self.state = "idle"
        elif self.thread is not None:
            # The owner's struct pool_thread is trusted only while its thread lives.
            owner = reg.field(raw, "job_owner", "P")
            if reg.pointer(owner + reg.off["thread_current"]) == address:
                self.state = "running"

    def saved_registers(self):
        """What the job saved when it stopped, by gdb's register names; {} when its stack
        cannot be read."""
        regs = {}
        try:
            for name, kind, offset in self.reg.layout:
                at = self.ctx + int(offset)
                regs[name] = at if kind == "=" else self.reg.pointer(at)
        except gdb.MemoryError:
            return {}
        return regs

    def stack_pointer(self):
        """The job's stack pointer: its thread's while it runs, else the saved one."""
        if self.state == "running":
            return thread_register(self.thread, "sp")
        for name, kind, offset in self.reg.layout:
            if kind == "=":
                return self.ctx + int(offset)
        return None


def thread_register(thread, name):
    """A register of a thread's innermost frame; the selection is restored afterwards."""
    selected = gdb.selected_thread()
    try:
        thread.switch()
        return int(gdb.newest_frame().read_register(name))
    except gdb.error:
        return None
    finally:
        if selected is not None and selected.is_valid():
            selected.switch()


def live_threads():
    return {t.ptid[1]: t for t in gdb.selected_inferior().threads()}


def jobs():
    reg = find_registry()
    threads = live_threads()
    found = []
    for address in reg.links():
        try:
            found.append(Job(reg, address, threads))
        except gdb.MemoryError:
            print("asyncjob: the job at 0x%x cannot be read" % address)
    return reg, found


def symbol_name(address, cache={}):
    """The name of the function at `address`, from debug information or the symbol table."""
    if address == 0:
        return "-"
    if address not in cache:
        out = gdb.execute("info symbol 0x%x" % address, to_string=True)
        cache[address] = ("0x%x" % address if out.startswith("No symbol")
                          else re.sub(r" \+ \d+$", "", out.split(" in section ")[0]))
    return cache[address]


class InfoAsyncjobs(gdb.Command):
    """List the asyncjob jobs of the process: number, thread (gdb's number and LWP),
state (running, paused or idle), start function, stack range and bytes of stack in use
(from the saved stack pointer of a suspended job, the thread's of a running one)."""

    def __init__(self):
        super().__init__("info asyncjobs", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        reg, all_jobs = jobs()
        print("%-5s %-14s %-8s %-24s %-37s %s" % ("Job", "Thread", "State", "Function",
                                                   "Stack", "Used"))
        for j in all_jobs:
            thread = ("%d (LWP %d)" % (j.thread.num, j.lwp) if j.thread
                      else "- (LWP %d)" % j.lwp)
            func = "-" if j.state == "idle" else symbol_name(j.func)
            sp = j.stack_pointer()
            size = j.top - j.lo
            used = ("%d/%d" % (j.top - sp, size) if sp is not None and j.lo <= sp <= j.top
                    else "?/%d" % size)
            print("%-5d %-14s %-8s %-24s 0x%x-0x%x %s" % (j.number, thread, j.state, func,
                                                         j.lo, j.top, used))
        counts = {}
        for j in all_jobs:
            counts[j.state] = counts.get(j.state, 0) + 1
        print("%d jobs: %s" % (len(all_jobs), ", ".join(
            "%d %s" % (counts.get(s, 0), s) for s in ("running", "paused", "idle"))))


class FrameId:
    def __init__(self, sp, pc):
        self.sp, self.pc = sp, pc


class JobUnwinder(gdb.unwinder.Unwinder):
    """While a job is being unwound, the selected thread's innermost frame claims that
    the job's saved registers are its caller's: gdb then unwinds the job's own frames
    from frame 1 on, by their CFI, reading only memory. Idle otherwise."""

    def __init__(self):
        super().__init__("asyncjob")
        self.job, self.registers = None, {}

    def __call__(self, pending):
        if self.job is None or pending.level() != 0:
            return None
        # An id below the job's frames, so that gdb does not take frame 1 for inner.
        info = pending.create_unwind_info(FrameId(gdb.Value(self.job.ctx),
                                                  pending.read_register("pc")))
        for name, value in self.registers.items():
            kind = pending.read_register(name).type
            info.add_saved_register(name, gdb.Value(value).cast(kind))
        return info


UNWINDER = JobUnwinder()
gdb.unwinder.register_unwinder(None, UNWINDER, replace=True)


def frame_line(level, frame):
    pc = frame.pc()
    where = ""
    sal = frame.find_sal()
    if sal.symtab is not None:
        where = " at %s:%d" % (sal.symtab.filename, sal.line)
    elif gdb.solib_name(pc):
        where = " from %s" % gdb.solib_name(pc)
    name = frame.name() or "??"
    inline = " [inlined]" if frame.type() == gdb.INLINE_FRAME else ""
    return "#%-3d 0x%016x in %s ()%s%s" % (level, pc, name, inline, where)


def selected_level():
    try:
        return gdb.selected_frame().level()
    except gdb.error:
        return None


def restore_level(level):
    frame = gdb.newest_frame()
    while level and frame.older() is not None:
        frame, level = frame.older(), level - 1
    frame.select()


def job_backtrace(job):
    """Print the frames of a suspended job, newest first, from its saved registers."""
    if not job.reg.layout:
        raise gdb.GdbError("asyncjob: the library does not know where the switch saves"
                           " registers on this architecture")
    registers = job.saved_registers()
    if not any(v for n, v in registers.items() if n in ("rip", "pc")):
        print("(no saved context: the job's stack is not readable%s)" %
              (" in this core file: see CORE FILES in asyncjob-gdb(7)" if core_file() else ""))
        return
    level = selected_level()
    UNWINDER.job = job
    UNWINDER.registers = registers
    gdb.invalidate_cached_frames()
    try:
        frame, last, n = gdb.newest_frame().older(), None, 0
        # The zeroed pad above the job's first frame reads as a null return address:
        # the frame before it is the job's entry, and the walk ends there.
        while frame is not None and frame.pc() != 0 and n < MAX_FRAMES:
            print(frame_line(n, frame))
            last, frame, n = frame, frame.older(), n + 1
        if last is None:
            print("(no frames: the job's saved context is unreadable)")
        elif frame is None and last.unwind_stop_reason() > gdb.FRAME_UNWIND_OUTERMOST:
            print("Backtrace stopped: %s" %
                  gdb.frame_stop_reason_string(last.unwind_stop_reason()))
    finally:
        UNWINDER.job = None
        gdb.invalidate_cached_frames()
        if level is not None:
            restore_level(level)


def core_file():
    connection = getattr(gdb.selected_inferior(), "connection", None)
    if connection is not None:
        return connection.type == "core"
    return "core dump file" in gdb.execute("info target", to_string=True)


def thread_label(job):
    return ("thread %d, LWP %d" % (job.thread.num, job.lwp) if job.thread
            else "thread exited, LWP %d" % job.lwp)


class AsyncjobPrefix(gdb.Command):
    """Commands for asyncjob's jobs: "asyncjob bt N" and "asyncjob bt all"."""

    def __init__(self):
        super().__init__("asyncjob", gdb.COMMAND_STACK, prefix=True)


class AsyncjobBt(gdb.Command):
    """Backtrace of a paused asyncjob job: "asyncjob bt N" (N as in "info asyncjobs"), or
"asyncjob bt all" for every paused job. The job is unwound from the registers it saved
when it paused, without resuming it: the process does not change."""

    def __init__(self):
        super().__init__("asyncjob bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        arg = arg.strip()
        if arg != "all" and not arg.isdigit():
            raise gdb.GdbError("usage: asyncjob bt N|all")
        _, all_jobs = jobs()
        if arg == "all":
            chosen = [j for j in all_jobs if j.state == "paused"]
        else:
            chosen = [j for j in all_jobs if j.number == int(arg)]
            if not chosen:
                raise gdb.GdbError("asyncjob: no job %s (see info asyncjobs)" % arg)
            if chosen[0].state != "paused":
                raise gdb.GdbError("asyncjob: job %s is %s, not paused%s" % (
                    arg, chosen[0].state, ": see bt on its thread"
                    if chosen[0].state == "running" else ""))
        for i, job in enumerate(chosen):
            if i:
                print()
            print("Job %d (paused, %s, started as %s):" % (job.number, thread_label(job),
                                                          symbol_name(job.func)))
            job_backtrace(job)
        if not chosen:
            print("No paused jobs.")


InfoAsyncjobs()
AsyncjobPrefix()
AsyncjobBt()
