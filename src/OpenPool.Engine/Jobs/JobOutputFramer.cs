using System.Text;

namespace OpenPool.Engine.Jobs;

/// <summary>
/// Turns a job's output bytes (with its sealed breaks) into <c>listen</c> message texts. The official
/// CLI prints every message followed by a newline and skips empty ones, so the printed stream is the
/// concatenation of <c>message + "\n"</c>. Cuts depend only on the bytes and the breaks, never on how
/// the bytes were read, which is what makes a live listener and a later replay print the same bytes:
/// <list type="bullet">
/// <item>a segment ends at every <c>\n</c> (dropped: print adds it back) and at every sealed break;</item>
/// <item>a segment longer than <see cref="SegmentBytes"/> is cut every <see cref="SegmentBytes"/> from
/// its start, moved back to a UTF-8 character boundary;</item>
/// <item>consecutive segments are joined with <c>\n</c> into messages of about <see cref="MessageChars"/>;</item>
/// <item>a message that would be empty (a lone blank line) is held and prepended to the next one.</item>
/// </list>
/// </summary>
internal sealed class JobOutputFramer
{
    /// <summary>
    /// Longest segment. Decoded, it is at most this many UTF-16 units, and JSON escaping grows a unit to
    /// at most 6 bytes (<c>\u00XX</c>), so a frame stays under 6 × 128 KiB + a little: well inside the
    /// 1 MiB frame limit of common clients.
    /// </summary>
    public const int SegmentBytes = 128 * 1024;

    /// <summary>Segments are batched up to this many characters per message; a longer segment travels alone.</summary>
    public const int MessageChars = 64 * 1024;

    // One byte more than a segment may hold: the byte that proves the segment is too long.
    private readonly byte[] _pending = new byte[SegmentBytes + 1];
    private int _pendingLength;
    private readonly StringBuilder _batch = new();
    private int _batchSegments;
    private readonly List<string> _ready = [];

    /// <summary>Absolute offset of the next byte expected by <see cref="Append"/>.</summary>
    public long Offset { get; private set; }

    /// <summary>Whether the batch is a lone blank line, held back because an empty message would not be printed.</summary>
    private bool HoldsBlankLine => _batchSegments == 1 && _batch.Length == 0;

    /// <summary>
    /// Feeds the bytes that start at <see cref="Offset"/>. <paramref name="breaks"/> are absolute offsets;
    /// those before <see cref="Offset"/> or after the end of <paramref name="bytes"/> are ignored, and one
    /// equal to <see cref="Offset"/> cuts whatever is pending.
    /// </summary>
    public void Append(ReadOnlySpan<byte> bytes, IReadOnlyList<long> breaks)
    {
        var start = Offset;
        var end = start + bytes.Length;
        var b = 0;
        while (b < breaks.Count && breaks[b] < start)
            b++;
        var position = 0;
        while (true)
        {
            var absolute = start + position;
            while (b < breaks.Count && breaks[b] <= absolute)
            {
                if (breaks[b] == absolute)
                    Cut();
                b++;
            }
            if (position == bytes.Length)
                break;
            var run = bytes.Length - position;
            if (b < breaks.Count && breaks[b] <= end)
                run = (int)Math.Min(run, breaks[b] - absolute);
            run = Math.Min(run, SegmentBytes + 1 - _pendingLength);
            var span = bytes.Slice(position, run);
            var newline = span.IndexOf((byte)'\n');
            if (newline >= 0)
            {
                Add(span[..newline]);
                EmitSegment(_pendingLength);
                position += newline + 1;
                continue;
            }
            Add(span);
            position += run;
            if (_pendingLength > SegmentBytes)
                EmitSegment(CharacterBoundaryAt(SegmentBytes));
        }
        Offset = end;
    }

    /// <summary>Messages ready to send. A lone blank line stays held until something follows it.</summary>
    public IReadOnlyList<string> TakeMessages()
    {
        if (_batchSegments > 0 && !HoldsBlankLine)
            FlushBatch();
        var messages = _ready.ToArray();
        _ready.Clear();
        return messages;
    }

    /// <summary>
    /// Ends the output (the job is terminal and everything was read): the unterminated tail becomes one
    /// more segment. Returns the last messages and the prefix for the final status message, which
    /// carries a held blank line (<c>"\n"</c>) or nothing.
    /// </summary>
    public (IReadOnlyList<string> Messages, string StatusPrefix) Finish()
    {
        Cut();
        var prefix = HoldsBlankLine ? "\n" : "";
        if (HoldsBlankLine)
        {
            _batch.Clear();
            _batchSegments = 0;
        }
        return (TakeMessages(), prefix);
    }

    private void Add(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_pending.AsSpan(_pendingLength));
        _pendingLength += bytes.Length;
    }

    /// <summary>A break, or the end: ends the pending segment unless it is empty (a break right after a newline cuts nothing).</summary>
    private void Cut()
    {
        if (_pendingLength > 0)
            EmitSegment(_pendingLength);
    }

    /// <summary>
    /// Where to cut a too-long segment: at <paramref name="limit"/>, moved back over at most three UTF-8
    /// continuation bytes so no character is split across messages (bytes that are no valid UTF-8 there
    /// are cut at the limit).
    /// </summary>
    private int CharacterBoundaryAt(int limit)
    {
        var cut = limit;
        while (cut > limit - 3 && IsContinuation(_pending[cut]))
            cut--;
        return IsContinuation(_pending[cut]) ? limit : cut;
    }

    private static bool IsContinuation(byte value) => (value & 0xC0) == 0x80;

    /// <summary>Ends a segment with the first <paramref name="length"/> pending bytes; the rest starts the next one.</summary>
    private void EmitSegment(int length)
    {
        // Invalid UTF-8 becomes U+FFFD here, per segment: segments are the same for every reader, so the replacement is too.
        var text = Encoding.UTF8.GetString(_pending, 0, length);
        var rest = _pendingLength - length;
        if (rest > 0)
            _pending.AsSpan(length, rest).CopyTo(_pending);
        _pendingLength = rest;

        if (_batchSegments > 0 && !HoldsBlankLine && _batch.Length + 1 + text.Length > MessageChars)
            FlushBatch();
        if (_batchSegments > 0)
            _batch.Append('\n');
        _batch.Append(text);
        _batchSegments++;
    }

    private void FlushBatch()
    {
        _ready.Add(_batch.ToString());
        _batch.Clear();
        _batchSegments = 0;
    }
}
