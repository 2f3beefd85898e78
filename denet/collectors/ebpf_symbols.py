"""User-space addresses to function names: ``/proc/PID/maps`` and the ELF symbol tables of the
mapped files (``.symtab``, else ``.dynsym``), read with :mod:`struct` (no debug info, no demangling).

A process's maps are read while it is alive (:meth:`Symbolizer.snapshot`, called at each sample),
so the waits of a process that has ended by the time the stacks are printed are still named.
"""

from __future__ import annotations

import bisect
import os
import struct

__all__ = ["ElfSymbols", "Symbolizer", "parse_maps"]

_PT_LOAD = 1
_SHT_SYMTAB = 2
_SHT_DYNSYM = 11
_STT_FUNC = 2
_STT_GNU_IFUNC = 10


def parse_maps(text: str) -> list[tuple[int, int, int, str]]:
    """The executable file mappings of a ``maps`` text: (start, end, file offset, path)."""
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6 or "x" not in parts[1]:
            continue
        path = parts[5].strip()
        if not path.startswith("/"):
            continue
        lo, _, hi = parts[0].partition("-")
        try:
            out.append((int(lo, 16), int(hi, 16), int(parts[2], 16), path))
        except ValueError:
            continue
    out.sort()
    return out


class ElfSymbols:
    """The function symbols of one ELF file, looked up by file offset."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.loads: list[tuple[int, int, int]] = []  # (p_offset, p_filesz, p_vaddr)
        self.addrs: list[int] = []
        self.syms: list[tuple[int, int, str]] = []  # (value, size, name), sorted by value
        with open(path, "rb") as fh:
            data = fh.read()
        self._parse(data)

    def _parse(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF":
            raise ValueError("not an ELF file")
        is64 = data[4] == 2
        end = "<" if data[5] == 1 else ">"
        if is64:
            (phoff, shoff) = struct.unpack_from(end + "QQ", data, 0x20)
            phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 0x36)
        else:
            (phoff, shoff) = struct.unpack_from(end + "II", data, 0x1C)
            phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 0x2A)
        for i in range(phnum):
            o = phoff + i * phentsize
            if is64:
                p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(end + "IIQQQQ", data, o)
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(end + "IIIII", data, o)
            if p_type == _PT_LOAD:
                self.loads.append((p_offset, p_filesz, p_vaddr))
        sections = []
        for i in range(shnum):
            o = shoff + i * shentsize
            if is64:
                _name, sh_type, _fl, _addr, sh_offset, sh_size, sh_link, _info, _align, sh_entsize = \
                    struct.unpack_from(end + "IIQQQQIIQQ", data, o)
            else:
                _name, sh_type, _fl, _addr, sh_offset, sh_size, sh_link, _info, _align, sh_entsize = \
                    struct.unpack_from(end + "IIIIIIIIII", data, o)
            sections.append((sh_type, sh_offset, sh_size, sh_link, sh_entsize))
        syms: dict[int, tuple[int, str]] = {}
        for want in (_SHT_SYMTAB, _SHT_DYNSYM):
            for sh_type, off, size, link, entsize in sections:
                if sh_type != want or not entsize or link >= len(sections):
                    continue
                str_off = sections[link][1]
                fmt = end + ("IBBHQQ" if is64 else "IIIBBH")
                for j in range(size // entsize):
                    if is64:
                        st_name, st_info, _other, shndx, value, sz = struct.unpack_from(fmt, data, off + j * entsize)
                    else:
                        st_name, value, sz, st_info, _other, shndx = struct.unpack_from(fmt, data, off + j * entsize)
                    if (st_info & 0xF) not in (_STT_FUNC, _STT_GNU_IFUNC) or not value or not shndx:
                        continue
                    e = data.find(b"\0", str_off + st_name)
                    name = data[str_off + st_name : e].decode("utf-8", "replace")
                    old = syms.get(value)
                    # aliases at one address: the public name (write rather than __libc_write)
                    if old is None or (old[1].startswith("_") and not name.startswith("_")):
                        syms[value] = (max(sz, old[0]) if old else sz, name)
            if syms:
                break  # .symtab has everything .dynsym has
        self.syms = sorted((v, s, n) for v, (s, n) in syms.items())
        self.addrs = [s[0] for s in self.syms]

    def vaddr(self, file_offset: int) -> int | None:
        for off, size, va in self.loads:
            if off <= file_offset < off + max(size, 1):
                return file_offset - off + va
        return None

    def lookup(self, file_offset: int) -> str | None:
        """``name+0xOFF`` of the function holding this file offset, or None."""
        va = self.vaddr(file_offset)
        if va is None:
            return None
        i = bisect.bisect_right(self.addrs, va) - 1
        if i < 0:
            return None
        value, size, name = self.syms[i]
        if size and va >= value + size:
            return None
        return f"{name}+0x{va - value:x}"


class Symbolizer:
    """Names user-space addresses of the processes it has seen."""

    def __init__(self) -> None:
        self._maps: dict[int, list[tuple[int, int, int, str]]] = {}
        self._elf: dict[str, ElfSymbols | None] = {}

    def snapshot(self, pid: int) -> bool:
        """Read (again) the maps of a live process; False when it cannot be read."""
        try:
            with open(f"/proc/{pid}/maps") as fh:
                maps = parse_maps(fh.read())
        except OSError:
            return False
        root = f"/proc/{pid}/root"
        self._maps[pid] = [(lo, hi, off, _in_root(root, path)) for lo, hi, off, path in maps]
        return True

    def _elf_of(self, path: str) -> ElfSymbols | None:
        if path not in self._elf:
            try:
                self._elf[path] = ElfSymbols(path)
            except (OSError, ValueError, struct.error, IndexError):
                self._elf[path] = None
        return self._elf[path]

    def name(self, pid: int, addr: int) -> str:
        """``function+0xOFF (file)``, or ``0xADDR (file+0xOFF)`` without a symbol, or ``0xADDR``."""
        maps = self._maps.get(pid)
        if maps is None and self.snapshot(pid):
            maps = self._maps[pid]
        for lo, hi, off, path in maps or ():
            if lo <= addr < hi:
                file_off = addr - lo + off
                base = os.path.basename(path)
                elf = self._elf_of(path)
                sym = elf.lookup(file_off) if elf is not None else None
                return f"{sym} ({base})" if sym else f"0x{addr:x} ({base}+0x{file_off:x})"
        return f"0x{addr:x}"


def _in_root(root: str, path: str) -> str:
    """The path as this process can open it: itself when the process sees the same root as denet,
    else through /proc/PID/root (another mount namespace, a container)."""
    try:
        mine, theirs = os.stat("/"), os.stat(root)
        if (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino):
            return path
    except OSError:
        return path
    alt = root + path
    return alt if os.path.exists(alt) else path
