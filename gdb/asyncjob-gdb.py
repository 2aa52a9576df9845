# asyncjob-gdb.py: gdb commands for the jobs of a program that uses libasyncjob.
#
#   info asyncjobs              one line per job: number, handle, thread, state, start
#                               function, stack
#   asyncjob bt [-full] N|all   the backtrace of paused job N, or of every paused job,
#                               without the library's own frames unless -full
#   asyncjob frame N [LEVEL]    select a frame of paused job N, for info locals, print,
#                               up and down; "asyncjob frame off" lets it go
#   asyncjob gcore [FILE]       gcore, then every started job's stack into the core file
#
# Everything is read from memory and registers, and nothing in the process changes (but
# the file asyncjob gcore writes), so the commands work on a live process and on a core
# file alike. They need no debug information
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


SYMBOLS = {}  # address -> name, emptied whenever gdb loads an object file


def symbol_name(address, cache=SYMBOLS):
    """The name of the function at `address`, from debug information or the symbol table."""
    if address == 0:
        return "-"
    if address not in cache:
        out = gdb.execute("info symbol 0x%x" % address, to_string=True)
        cache[address] = ("0x%x" % address if out.startswith("No symbol")
                          else re.sub(r" \+ \d+$", "", out.split(" in section ")[0]))
    return cache[address]


class InfoAsyncjobs(gdb.Command):
    """List the asyncjob jobs of the process: number, handle (the ASYNC_JOB * the program
holds), thread (gdb's number and LWP), state (running, paused or idle), start function,
stack range and bytes of stack in use (from the saved stack pointer of a suspended job,
the thread's of a running one)."""

    def __init__(self):
        super().__init__("info asyncjobs", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        reg, all_jobs = jobs()
        print("%-5s %-18s %-14s %-8s %-24s %-37s %s" % ("Job", "Handle", "Thread", "State",
                                                         "Function", "Stack", "Used"))
        for j in all_jobs:
            thread = ("%d (LWP %d)" % (j.thread.num, j.lwp) if j.thread
                      else "- (LWP %d)" % j.lwp)
            func = "-" if j.state == "idle" else symbol_name(j.func)
            sp = j.stack_pointer()
            size = j.top - j.lo
            used = ("%d/%d" % (j.top - sp, size) if sp is not None and j.lo <= sp <= j.top
                    else "?/%d" % size)
            print("%-5d %-18s %-14s %-8s %-24s 0x%x-0x%x %s" % (
                j.number, "0x%x" % j.address, thread, j.state, func, j.lo, j.top, used))
        counts = {}
        for j in all_jobs:
            counts[j.state] = counts.get(j.state, 0) + 1
        print("%d jobs: %s" % (len(all_jobs), ", ".join(
            "%d %s" % (counts.get(s, 0), s) for s in ("running", "paused", "idle"))))


class FrameId:
    def __init__(self, sp, pc):
        self.sp, self.pc = sp, pc


class JobUnwinder(gdb.unwinder.Unwinder):
    """While a job is grafted on a thread, that thread's innermost frame claims that the
    job's saved registers are its caller's: gdb then unwinds the job's own frames from
    frame 1 on, by their CFI, reading only memory. Grafted for the time of asyncjob bt,
    and from asyncjob frame until asyncjob frame off or the program runs again."""

    def __init__(self):
        super().__init__("asyncjob")
        self.graft = None  # (job, registers, thread ptid)

    def __call__(self, pending):
        if self.graft is None or pending.level() != 0:
            return None
        job, registers, ptid = self.graft
        thread = gdb.selected_thread()
        if thread is None or thread.ptid != ptid:
            return None
        # An id below the job's frames, so that gdb does not take frame 1 for inner.
        info = pending.create_unwind_info(FrameId(gdb.Value(job.ctx),
                                                  pending.read_register("pc")))
        for name, value in registers.items():
            kind = pending.read_register(name).type
            info.add_saved_register(name, gdb.Value(value).cast(kind))
        return info


UNWINDER = JobUnwinder()
gdb.unwinder.register_unwinder(None, UNWINDER, replace=True)
# The job selected by asyncjob frame: (number, job) while grafted.
SELECTED = {"job": None}


def set_graft(graft):
    UNWINDER.graft = graft
    gdb.invalidate_cached_frames()


def release_selection(*_):
    """The program runs again, exits or is replaced: the job's saved registers no longer
    hold, so its frames leave the thread's backtrace."""
    if SELECTED["job"] is not None:
        SELECTED["job"] = None
        set_graft(None)


gdb.events.cont.connect(release_selection)
gdb.events.exited.connect(release_selection)
if hasattr(gdb.events, "new_objfile"):
    gdb.events.new_objfile.connect(lambda _: SYMBOLS.clear())


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


def check_layout(job):
    if not job.reg.layout:
        raise gdb.GdbError(
            "asyncjob: this libasyncjob does not say where Boost's jump_fcontext saves a"
            " paused job's registers: the probe of its build could not run (a cross build"
            " without an emulator, or an architecture it does not know), so its jobs can"
            " be listed but not unwound (see asyncjob-gdb(7), LIMITATIONS)")


def graft_of(job):
    """What grafts `job` on the selected thread; None, with the reason printed, when its
    saved context cannot be read."""
    check_layout(job)
    registers = job.saved_registers()
    if not any(v for n, v in registers.items() if n in ("rip", "pc", "eip")):
        print("(no saved context: the job's stack is not readable%s)" %
              (" in this core file: see CORE FILES in asyncjob-gdb(7)" if core_file() else ""))
        return None
    thread = gdb.selected_thread()
    if thread is None:
        raise gdb.GdbError("asyncjob: no thread is selected")
    return (job, registers, thread.ptid)


def job_frames(job):
    """The job's frames (gdb frames 1 and older while it is grafted), newest first, down
    to its entry, and the reason the walk stopped early ("" if it did not)."""
    frames = []
    frame = gdb.newest_frame().older()
    # The zeroed pad above the job's first frame reads as a null return address: the
    # frame before it is the job's entry, and the walk ends there.
    while frame is not None and frame.pc() != 0 and len(frames) < MAX_FRAMES:
        frames.append(frame)
        frame = frame.older()
    stopped = ""
    if frames and frame is None and frames[-1].unwind_stop_reason() > gdb.FRAME_UNWIND_OUTERMOST:
        stopped = gdb.frame_stop_reason_string(frames[-1].unwind_stop_reason())
    return frames, stopped


# The library's entry points that a job calls to pause: what is newer is the switch.
PAUSE_FUNCTIONS = ("ASYNC_pause_job",)


def user_range(job, frames):
    """The levels [first, last] of the job's own frames: older than its call into the
    library that paused it, newer than the library's code that started it. The library is
    told apart by function names (its pausing entry point and the start function), so that
    it works with a shared or static library, with or without symbols."""
    names = [f.name() for f in frames]
    first = 0
    for i, name in enumerate(names):
        if name in PAUSE_FUNCTIONS:
            first = i + 1
            break
    last = len(frames) - 1
    start = symbol_name(job.func)
    for i in range(first, len(frames)):
        if names[i] == start:
            last = i
            break
    if first > last:
        return 0, len(frames) - 1
    return first, last


def job_backtrace(job, full):
    """Print the frames of a suspended job, newest first, from its saved registers."""
    graft = graft_of(job)
    if graft is None:
        return
    level = selected_level()
    saved = UNWINDER.graft
    set_graft(graft)
    try:
        frames, stopped = job_frames(job)
        if not frames:
            print("(no frames: the job's saved context is unreadable)")
            return
        first, last = (0, len(frames) - 1) if full else user_range(job, frames)
        for n in range(first, last + 1):
            print(frame_line(n, frames[n]))
        hidden = len(frames) - (last - first + 1)
        if hidden:
            print("(%d frame%s of libasyncjob hidden: asyncjob bt -full %d shows them)" %
                  (hidden, "" if hidden == 1 else "s", job.number))
        if stopped:
            print("Backtrace stopped: %s" % stopped)
    finally:
        set_graft(saved)
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


def paused_job(number):
    """Job `number` of the process, which must be paused."""
    _, all_jobs = jobs()
    chosen = [j for j in all_jobs if j.number == number]
    if not chosen:
        raise gdb.GdbError("asyncjob: no job %d (see info asyncjobs)" % number)
    if chosen[0].state != "paused":
        raise gdb.GdbError("asyncjob: job %d is %s, not paused%s" % (
            number, chosen[0].state, ": see bt on its thread"
            if chosen[0].state == "running" else ""))
    return chosen[0]


class AsyncjobPrefix(gdb.Command):
    """Commands for asyncjob's jobs: asyncjob bt, asyncjob frame, asyncjob gcore."""

    def __init__(self):
        super().__init__("asyncjob", gdb.COMMAND_STACK, prefix=True)


class AsyncjobBt(gdb.Command):
    """Backtrace of a paused asyncjob job: "asyncjob bt N" (N as in "info asyncjobs"), or
"asyncjob bt all" for every paused job. The job is unwound from the registers it saved
when it paused, without resuming it: the process does not change. The library's own
frames (the pause and the switch above the job's code, the job loop below it) are left
out; "asyncjob bt -full N|all" shows them. Frames keep their numbers either way, as
"asyncjob frame N LEVEL" takes them."""

    def __init__(self):
        super().__init__("asyncjob bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        words = arg.split()
        full = "-full" in words
        words = [w for w in words if w != "-full"]
        if len(words) != 1 or (words[0] != "all" and not words[0].isdigit()):
            raise gdb.GdbError("usage: asyncjob bt [-full] N|all")
        if words[0] == "all":
            chosen = [j for j in jobs()[1] if j.state == "paused"]
        else:
            chosen = [paused_job(int(words[0]))]
        for i, job in enumerate(chosen):
            if i:
                print()
            print("Job %d (paused, handle 0x%x, %s, started as %s):" % (
                job.number, job.address, thread_label(job), symbol_name(job.func)))
            job_backtrace(job, full)
        if not chosen:
            print("No paused jobs.")


class AsyncjobFrame(gdb.Command):
    """Select a frame of a paused asyncjob job: "asyncjob frame N [LEVEL]", with N as in
"info asyncjobs" and LEVEL as in "asyncjob bt" (by default the newest frame of the job's
own code). The job is grafted on the selected thread: gdb's frame 0 stays the thread's,
and the job's frames follow from frame 1 on, so frame, up, down, info frame, info locals
and print work on them. Nothing in the process changes. "asyncjob frame off" (or
resuming the program) gives the thread its own backtrace back."""

    def __init__(self):
        super().__init__("asyncjob frame", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        words = arg.split()
        if words == ["off"]:
            had = SELECTED["job"]
            release_selection()
            gdb.newest_frame().select()
            print("No job selected." if had is None else
                  "Job %d let go: thread %d has its own backtrace again." % (
                      had.number, gdb.selected_thread().num))
            return
        if not 1 <= len(words) <= 2 or not all(w.isdigit() for w in words):
            raise gdb.GdbError("usage: asyncjob frame N [LEVEL] | asyncjob frame off")
        job = paused_job(int(words[0]))
        graft = graft_of(job)
        if graft is None:
            raise gdb.GdbError("asyncjob: job %d cannot be unwound" % job.number)
        release_selection()
        SELECTED["job"] = job
        set_graft(graft)
        frames, _ = job_frames(job)
        if not frames:
            release_selection()
            raise gdb.GdbError("asyncjob: job %d has no frames to select" % job.number)
        if len(words) == 2:
            level = int(words[1])
            if level >= len(frames):
                raise gdb.GdbError("asyncjob: job %d has frames 0 to %d" % (
                    job.number, len(frames) - 1))
        else:
            level = user_range(job, frames)[0]
        frames[level].select()
        print("Job %d (started as %s) grafted on thread %d: its frame %d is gdb's frame %d;"
              " \"asyncjob frame off\" lets it go." % (
                  job.number, symbol_name(job.func), gdb.selected_thread().num, level,
                  level + 1))
        gdb.execute("frame")


def page_floor(address, page=4096):
    return address - address % page


class CoreFile:
    """A core file's program headers, to fill in or append the memory it lacks."""

    def __init__(self, f):
        self.f = f
        ident = f.read(64)
        if ident[:4] != b"\x7fELF" or struct.unpack_from("<H", ident, 16)[0] not in (4, 0x400):
            raise gdb.GdbError("asyncjob gcore: the file gcore wrote is not an ELF core file")
        self.o = "<" if ident[5] == 1 else ">"
        self.wide = ident[4] == 2
        if self.wide:
            self.phoff, = struct.unpack_from(self.o + "Q", ident, 32)
            self.shoff, = struct.unpack_from(self.o + "Q", ident, 40)
            self.phentsize, self.phnum = struct.unpack_from(self.o + "HH", ident, 54)
            self.phdr = "IIQQQQQQ"
        else:
            self.phoff, self.shoff = struct.unpack_from(self.o + "II", ident, 28)
            self.phentsize, self.phnum = struct.unpack_from(self.o + "HH", ident, 42)
            self.phdr = "IIIIIIII"
        if self.phnum == 0xffff:  # PN_XNUM: the count is section 0's sh_info
            f.seek(self.shoff + (44 if self.wide else 28))
            self.phnum, = struct.unpack(self.o + "I", f.read(4))
        f.seek(self.phoff)
        table = f.read(self.phentsize * self.phnum)
        self.entries = [list(struct.unpack_from(self.o + self.phdr, table, i * self.phentsize))
                        for i in range(self.phnum)]

    def segment(self, e):
        """(type, offset, vaddr, filesz, memsz) of an entry, whatever the class."""
        if self.wide:
            return e[0], e[2], e[3], e[5], e[6]
        return e[0], e[1], e[2], e[4], e[5]

    def file_range(self, address, size):
        """The file offset holding [address, address + size), or None."""
        for e in self.entries:
            kind, offset, vaddr, filesz, _ = self.segment(e)
            if kind == 1 and vaddr <= address and address + size <= vaddr + filesz:
                return offset + address - vaddr
        return None

    def append(self, pieces):
        """Add PT_LOAD segments for `pieces` [(address, bytes)] at the end of the file,
        then a new program header table after them."""
        self.f.seek(0, 2)
        end = self.f.tell()
        for address, data in pieces:
            self.f.write(data)
            if self.wide:  # p_type, p_flags (R|W), offset, vaddr, paddr, filesz, memsz, align
                self.entries.append([1, 6, end, address, 0, len(data), len(data), 1])
            else:
                self.entries.append([1, end, address, 0, len(data), len(data), 6, 1])
            end += len(data)
        pad = -end % 8
        self.f.write(b"\0" * pad)
        self.phoff = end + pad
        for e in self.entries:
            self.f.write(struct.pack(self.o + self.phdr, *e))
        count = len(self.entries)
        if self.wide:
            self.f.seek(32)
            self.f.write(struct.pack(self.o + "Q", self.phoff))
            self.f.seek(56)
        else:
            self.f.seek(28)
            self.f.write(struct.pack(self.o + "I", self.phoff))
            self.f.seek(44)
        if count >= 0xffff:
            if self.shoff == 0:
                raise gdb.GdbError("asyncjob gcore: too many segments for a core file"
                                   " without section headers")
            self.f.write(struct.pack(self.o + "H", 0xffff))
            self.f.seek(self.shoff + (44 if self.wide else 28))
            self.f.write(struct.pack(self.o + "I", count))
        else:
            self.f.write(struct.pack(self.o + "H", count))


def readable_pieces(start, end):
    """The readable parts of [start, end) of the live process, page by page where a read
    of the whole fails, as [(address, bytes)]."""
    inferior = gdb.selected_inferior()
    try:
        return [(start, bytes(inferior.read_memory(start, end - start)))]
    except gdb.MemoryError:
        pass
    pieces, page = [], start
    while page < end:
        stop = min(page_floor(page) + 4096, end)
        try:
            data = bytes(inferior.read_memory(page, stop - page))
            if pieces and pieces[-1][0] + len(pieces[-1][1]) == page:
                pieces[-1] = (pieces[-1][0], pieces[-1][1] + data)
            else:
                pieces.append((page, data))
        except gdb.MemoryError:
            pass
        page = stop
    return pieces


class AsyncjobGcore(gdb.Command):
    """Write a core file of the live process with every started job's stack in it:
"asyncjob gcore [FILE]" (FILE as gcore's, core.PID by default). gdb's gcore leaves out
any mapping it cannot read whole, such as the library's default job stacks when their
guard pages are guard regions (MADV_GUARD_INSTALL, Linux 6.13 and later); this command
runs gcore, then writes the stack of every paused and running job into the file, from
below its stack pointer to its top: in place where gcore kept the mapping's room, as new
segments where it left the mapping out."""

    def __init__(self):
        super().__init__("asyncjob gcore", gdb.COMMAND_FILES)

    def invoke(self, arg, from_tty):
        inferior = gdb.selected_inferior()
        if inferior.pid == 0 or core_file():
            raise gdb.GdbError("asyncjob gcore: needs a live process (this is %s)" %
                               ("a core file" if inferior.pid else "no process"))
        path = arg.strip() or "core.%d" % inferior.pid
        _, all_jobs = jobs()
        ranges = []
        for job in all_jobs:
            if job.state == "idle":
                continue
            sp = job.stack_pointer()
            # The red zone and a signal frame below the stack pointer are kept too.
            low = job.lo if sp is None else max(job.lo, page_floor(sp - 512))
            if low < job.top:
                ranges.append((low, job.top))
        gdb.execute("gcore %s" % path, to_string=not from_tty)
        written = added = missing = 0
        with open(path, "r+b") as f:
            core = CoreFile(f)
            extra = []
            for start, end in ranges:
                for address, data in readable_pieces(start, end):
                    at = core.file_range(address, len(data))
                    if at is None:
                        extra.append((address, data))
                        added += len(data)
                        continue
                    f.seek(at)
                    if f.read(len(data)) != data:
                        missing += 1
                        f.seek(at)
                        f.write(data)
                    written += len(data)
            if extra:
                core.append(extra)
        print("asyncjob gcore: %d job stacks (%d bytes) in %s: %d filled in where gcore"
              " could not read them, %d bytes in new segments" % (
                  len(ranges), written + added, path, missing, added))


InfoAsyncjobs()
AsyncjobPrefix()
AsyncjobBt()
AsyncjobFrame()
AsyncjobGcore()
