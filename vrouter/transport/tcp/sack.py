"""Selective acknowledgment (RFC 2018): the receiver's queue and blocks, the sender's scoreboard.

Receiving side: :class:`ReassemblyQueue` holds data that arrived beyond
RCV.NXT (only inside the advertised window, so it is bounded by the receive
buffer), merges overlapping and adjacent pieces, hands back what became
contiguous, and names the SACK blocks to report: the block holding the
segment that triggered the ACK first, then the most recently reported other
blocks (RFC 2018 section 4).

Sending side: :class:`Scoreboard` records what the peer SACKed above
SND.UNA and answers the questions of RFC 6675's loss recovery: is the first
unacknowledged byte lost (``IsLost``), which hole to retransmit next
(``NextSeg``) and how many bytes are still in the network (``pipe``).

All sequence numbers are 32-bit and compared relative to a base the caller
passes (RCV.NXT or SND.UNA), so wrap-around needs no special case.
"""

from __future__ import annotations

from vrouter.transport.tcp import seq

MASK = seq.MASK
MAX_RECENT = 8
"""Recently reported blocks remembered for the SACK option."""


class ReassemblyQueue:
    """Out-of-order data above RCV.NXT, merged into contiguous blocks."""

    __slots__ = ("_blocks", "_recent", "size")

    def __init__(self) -> None:
        self._blocks: list[tuple[int, bytearray]] = []
        """(first sequence number, data), ascending from RCV.NXT, never touching."""
        self._recent: list[int] = []
        """A sequence number inside each recently received block, newest first."""
        self.size = 0
        """Bytes held."""

    def __len__(self) -> int:
        return len(self._blocks)

    def __bool__(self) -> bool:
        return bool(self._blocks)

    def ranges(self) -> list[tuple[int, int]]:
        """Return the blocks as (left edge, right edge) pairs, lowest first."""
        return [(start, (start + len(data)) & MASK) for start, data in self._blocks]

    def insert(self, rcv_nxt: int, start: int, data: bytes | memoryview) -> None:
        """Store ``data`` at ``start`` (beyond ``rcv_nxt``), merging with what is held."""
        if not data:
            return
        off = (start - rcv_nxt) & MASK
        end_off = off + len(data)
        blocks = self._blocks
        i = 0
        n = len(blocks)
        while i < n and ((blocks[i][0] - rcv_nxt) & MASK) + len(blocks[i][1]) < off:
            i += 1  # blocks wholly before the new data (not even adjacent)
        j = i
        while j < n and ((blocks[j][0] - rcv_nxt) & MASK) <= end_off:
            j += 1  # blocks overlapping or adjacent: i..j-1
        if j == i:
            blocks.insert(i, (start, bytearray(data)))
            self.size += len(data)
        elif j == i + 1 and ((blocks[i][0] - rcv_nxt) & MASK) + len(blocks[i][1]) == off:
            blocks[i][1].extend(data)  # the common case: appended to a block's end
            self.size += len(data)
        else:
            first_off = min(off, (blocks[i][0] - rcv_nxt) & MASK)
            last = blocks[j - 1]
            last_end = max(end_off, ((last[0] - rcv_nxt) & MASK) + len(last[1]))
            merged = bytearray(last_end - first_off)
            merged[off - first_off : end_off - first_off] = data
            for b_start, b_data in blocks[i:j]:
                b_off = ((b_start - rcv_nxt) & MASK) - first_off
                merged[b_off : b_off + len(b_data)] = b_data
                self.size -= len(b_data)
            blocks[i:j] = [((rcv_nxt + first_off) & MASK, merged)]
            self.size += len(merged)
        recent = self._recent
        if start in recent:
            recent.remove(start)
        recent.insert(0, start)
        del recent[MAX_RECENT:]

    def pop(self, rcv_nxt: int) -> bytearray | None:
        """Return the data that now continues at ``rcv_nxt`` (removed), or None.

        Blocks that RCV.NXT already passed are discarded; one it reached into
        is returned from RCV.NXT on.
        """
        blocks = self._blocks
        while blocks:
            start, data = blocks[0]
            ahead = (start - rcv_nxt) & MASK
            if ahead == 0:
                del blocks[0]
                self.size -= len(data)
                return data
            if ahead < seq.HALF:
                return None
            behind = (rcv_nxt - start) & MASK
            del blocks[0]
            self.size -= len(data)
            if behind < len(data):
                return data[behind:]
        return None

    def sack_blocks(self, rcv_nxt: int, limit: int) -> list[tuple[int, int]]:
        """Return up to ``limit`` SACK blocks, most recently changed first (RFC 2018 4)."""
        out: list[tuple[int, int]] = []
        if not self._blocks or limit <= 0:
            return out
        keep: list[int] = []
        for mark in self._recent:
            off = (mark - rcv_nxt) & MASK
            for start, data in self._blocks:
                b_off = (start - rcv_nxt) & MASK
                if b_off <= off < b_off + len(data):
                    block = (start, (start + len(data)) & MASK)
                    if block not in out:
                        out.append(block)
                        keep.append(mark)
                    break
        self._recent = keep
        if len(out) < limit:  # blocks never reported yet (after a merge dropped a mark)
            out.extend(b for b in self.ranges() if b not in out)
        return out[:limit]

    def clear(self) -> None:
        """Forget everything held."""
        self._blocks.clear()
        self._recent.clear()
        self.size = 0


class Scoreboard:
    """What the peer has SACKed above SND.UNA (RFC 6675 section 3)."""

    __slots__ = ("_blocks", "sacked")

    def __init__(self) -> None:
        self._blocks: list[list[int]] = []
        """[left, right) pairs, ascending from SND.UNA, merged."""
        self.sacked = 0
        """Bytes SACKed above SND.UNA."""

    def __bool__(self) -> bool:
        return bool(self._blocks)

    def ranges(self) -> list[tuple[int, int]]:
        """Return the SACKed ranges, lowest first."""
        return [(a, b) for a, b in self._blocks]

    def clear(self) -> None:
        """Forget every SACK (after a timeout, RFC 2018 8: the receiver may have reneged)."""
        self._blocks.clear()
        self.sacked = 0

    def update(self, blocks: tuple[tuple[int, int], ...], snd_una: int, snd_max: int) -> int:
        """Record the SACK ``blocks`` of an ACK; return the bytes newly SACKed.

        Blocks that are empty, reach below SND.UNA or above SND.MAX are
        ignored (RFC 2018 does not let them happen; D-SACK would send them).
        """
        before = self.sacked
        limit = (snd_max - snd_una) & MASK
        for left, right in blocks:
            lo = (left - snd_una) & MASK
            hi = (right - snd_una) & MASK
            if not 0 < lo < hi <= limit:
                continue
            self._insert(lo, hi, snd_una)
        return self.sacked - before

    def _insert(self, lo: int, hi: int, base: int) -> None:
        merged: list[list[int]] = []
        placed = False
        for b in self._blocks:
            b_lo = (b[0] - base) & MASK
            b_hi = (b[1] - base) & MASK
            if b_hi < lo or b_lo > hi:
                if b_lo > hi and not placed:
                    merged.append([lo, hi])
                    placed = True
                merged.append([b_lo, b_hi])
            else:
                lo = min(lo, b_lo)
                hi = max(hi, b_hi)
        if not placed:
            merged.append([lo, hi])
        merged.sort()
        self._blocks = [[(a + base) & MASK, (b + base) & MASK] for a, b in merged]
        self.sacked = sum(b - a for a, b in merged)

    def prune(self, snd_una: int) -> None:
        """Drop what SND.UNA (the cumulative ACK) now covers."""
        blocks = self._blocks
        while blocks:
            lo = blocks[0][0]
            hi = blocks[0][1]
            if seq.le(hi, snd_una):
                del blocks[0]
                self.sacked -= (hi - lo) & MASK
            elif seq.lt(lo, snd_una):
                self.sacked -= (snd_una - lo) & MASK
                blocks[0][0] = snd_una
                break
            else:
                break

    def highest(self, snd_una: int) -> int:
        """Return the right edge of the highest SACKed block (SND.UNA if none)."""
        return self._blocks[-1][1] if self._blocks else snd_una

    def lost_below(self, snd_una: int, smss: int, dupthresh: int = 3) -> int:
        """Return the point below which every unSACKed byte counts as lost (RFC 6675 IsLost).

        A byte is lost when ``dupthresh`` discontiguous blocks, or more than
        ``(dupthresh - 1) * smss`` SACKed bytes, lie above it.  Returns
        ``snd_una`` when nothing is lost.
        """
        blocks = self._blocks
        if not blocks:
            return snd_una
        point = snd_una
        if len(blocks) >= dupthresh:
            point = blocks[-dupthresh][0]
        total = 0
        for lo, hi in reversed(blocks):
            size = (hi - lo) & MASK
            if total + size > (dupthresh - 1) * smss:
                # Every unSACKed byte lies below lo or above hi: those below
                # lo have more than (dupthresh - 1) * smss SACKed above them.
                return seq.max_(point, lo)
            total += size
        return point

    def unsacked(self, snd_una: int, lo: int, hi: int) -> int:
        """Return how many bytes of [lo, hi) are not SACKed."""
        lo_off = (lo - snd_una) & MASK
        hi_off = (hi - snd_una) & MASK
        if hi_off <= lo_off:
            return 0
        count = hi_off - lo_off
        for a, b in self._blocks:
            a_off = (a - snd_una) & MASK
            b_off = (b - snd_una) & MASK
            overlap = min(b_off, hi_off) - max(a_off, lo_off)
            if overlap > 0:
                count -= overlap
        return count

    def is_sacked(self, snd_una: int, at: int) -> bool:
        """Return True if the byte ``at`` has been SACKed."""
        off = (at - snd_una) & MASK
        return any(((a - snd_una) & MASK) <= off < ((b - snd_una) & MASK) for a, b in self._blocks)

    def next_hole(self, snd_una: int, start: int, limit: int) -> tuple[int, int] | None:
        """Return the first unSACKed range at or after ``start`` and below ``limit``."""
        s = (start - snd_una) & MASK
        lim = (limit - snd_una) & MASK
        for a, b in self._blocks:
            a_off = (a - snd_una) & MASK
            b_off = (b - snd_una) & MASK
            if s >= lim:
                return None
            if s < a_off:
                return ((s + snd_una) & MASK, (min(a_off, lim) + snd_una) & MASK)
            s = max(s, b_off)
        if s < lim:
            return ((s + snd_una) & MASK, limit)
        return None

    def pipe(self, snd_una: int, snd_max: int, high_rxt: int, smss: int) -> int:
        """Return RFC 6675's ``pipe``: bytes the sender believes are still in the network.

        Every unSACKed byte that is not lost counts once; every one resent
        in this recovery (below ``high_rxt``) counts once more.
        """
        outstanding = (snd_max - snd_una) & MASK
        lost_edge = self.lost_below(snd_una, smss)
        lost = self.unsacked(snd_una, snd_una, lost_edge)
        resent = self.unsacked(snd_una, snd_una, high_rxt) if seq.gt(high_rxt, snd_una) else 0
        return outstanding - self.sacked - lost + resent
