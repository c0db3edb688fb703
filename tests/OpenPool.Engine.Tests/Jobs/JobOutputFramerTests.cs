using System.Text;
using System.Text.Json;
using OpenPool.Engine.Http;
using OpenPool.Engine.Jobs;

namespace OpenPool.Engine.Tests.Jobs;

/// <summary>
/// The framing rule of <c>listen</c>, checked against what the official CLI prints: every message
/// followed by a newline, empty messages not at all.
/// </summary>
public sealed class JobOutputFramerTests
{
    private const string Status = "Job j-x completed successfully (exit code 0).";
    private const int Segment = JobOutputFramer.SegmentBytes;

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>What the CLI prints for the messages and the final status frame.</summary>
    private static string Printed(IEnumerable<string> messages, string statusPrefix)
    {
        var printed = new StringBuilder();
        foreach (var message in messages)
        {
            Assert.NotEqual("", message); // the CLI would drop it, and with it a newline
            printed.Append(message).Append('\n');
        }
        return printed.Append(statusPrefix).Append(Status).Append('\n').ToString();
    }

    /// <summary>Feeds the output in the given chunks, as a listener reading as it goes would; returns the messages per step and the printed stream.</summary>
    private static (List<IReadOnlyList<string>> Steps, string Printed) Run(byte[] output, IReadOnlyList<long> breaks, IEnumerable<int> chunkSizes)
    {
        var framer = new JobOutputFramer();
        var steps = new List<IReadOnlyList<string>>();
        var all = new List<string>();
        var offset = 0;
        foreach (var size in chunkSizes.Append(int.MaxValue))
        {
            var length = Math.Min(size, output.Length - offset);
            var end = offset + length;
            // As the provider answers a read from one byte back: breaks after that, up to the end read.
            framer.Append(output.AsSpan(offset, length), breaks.Where(b => b >= offset && b <= end).ToList());
            offset = end;
            var messages = framer.TakeMessages();
            steps.Add(messages);
            all.AddRange(messages);
            if (offset == output.Length)
                break;
        }
        var (last, prefix) = framer.Finish();
        all.AddRange(last);
        return (steps, Printed(all, prefix));
    }

    private static string RunWhole(byte[] output, IReadOnlyList<long>? breaks = null) => Run(output, breaks ?? [], []).Printed;

    /// <summary>
    /// The rule written as plainly as possible, byte by byte: cut at newlines, at breaks, and past
    /// 128 KiB (back to a character boundary); print each segment with a newline.
    /// </summary>
    private static string Predicted(byte[] output, IReadOnlyList<long> breaks)
    {
        var printed = new StringBuilder();
        var segment = new List<byte>();
        void Emit(int length)
        {
            printed.Append(Encoding.UTF8.GetString(segment.Take(length).ToArray())).Append('\n');
            segment.RemoveRange(0, length);
        }
        for (var p = 0; p <= output.Length; p++)
        {
            if (breaks.Contains(p) && segment.Count > 0)
                Emit(segment.Count);
            if (p == output.Length)
                break;
            if (output[p] == '\n')
            {
                Emit(segment.Count);
                continue;
            }
            segment.Add(output[p]);
            if (segment.Count > Segment)
            {
                var cut = Segment;
                while (cut > Segment - 3 && (segment[cut] & 0xC0) == 0x80)
                    cut--;
                Emit((segment[cut] & 0xC0) == 0x80 ? Segment : cut);
            }
        }
        if (segment.Count > 0)
            Emit(segment.Count);
        return printed.Append(Status).Append('\n').ToString();
    }

    [Fact]
    public void Lines_print_as_written_and_an_unterminated_tail_ends_with_the_job()
    {
        Assert.Equal("one\ntwo\n" + Status + "\n", RunWhole(Bytes("one\ntwo\n")));
        Assert.Equal("one\ntwo\n" + Status + "\n", RunWhole(Bytes("one\ntwo")));
        Assert.Equal(Status + "\n", RunWhole([]));
    }

    [Fact]
    public void A_lone_blank_line_is_held_until_something_follows_and_folds_into_the_status()
    {
        var framer = new JobOutputFramer();
        framer.Append(Bytes("a\n"), []);
        Assert.Equal(["a"], framer.TakeMessages());
        framer.Append(Bytes("\n"), []);
        Assert.Empty(framer.TakeMessages());
        framer.Append(Bytes("b\n"), []);
        Assert.Equal(["\nb"], framer.TakeMessages());
        framer.Append(Bytes("\n\n"), []);
        Assert.Equal(["\n"], framer.TakeMessages()); // two blank lines make a message that prints both
        framer.Append(Bytes("\n"), []);
        var (last, prefix) = framer.Finish();
        Assert.Empty(last);
        Assert.Equal("\n", prefix);
        Assert.Equal("a\n\nb\n\n\n\n" + Status + "\n", Printed(["a", "\nb", "\n"], prefix));
        Assert.Equal("a\n\nb\n\n\n\n" + Status + "\n", RunWhole(Bytes("a\n\nb\n\n\n\n")));
    }

    [Fact]
    public void Sealed_breaks_cut_an_unfinished_line_so_a_progress_bar_shows_at_once()
    {
        var framer = new JobOutputFramer();
        framer.Append(Bytes("\rstep 1/5"), [9]);
        Assert.Equal(["\rstep 1/5"], framer.TakeMessages());
        framer.Append(Bytes("\rstep 2/5"), []);
        Assert.Empty(framer.TakeMessages()); // not sealed yet: no cut of its own
        framer.Append([], [18]); // sealed exactly where the last read ended
        Assert.Equal(["\rstep 2/5"], framer.TakeMessages());
        framer.Append(Bytes("\n"), []);
        Assert.Empty(framer.TakeMessages()); // the newline after a cut is a blank segment, held
        Assert.Equal("\n", framer.Finish().StatusPrefix);
    }

    [Fact]
    public void A_break_right_after_a_newline_or_another_break_cuts_nothing()
    {
        Assert.Equal("a\nb\n" + Status + "\n", RunWhole(Bytes("a\nb"), [2, 3, 3]));
        Assert.Equal("ab\nc\n" + Status + "\n", RunWhole(Bytes("abc"), [0, 2, 2]));
    }

    [Fact]
    public void A_long_line_is_cut_every_128_KiB_back_to_a_character_boundary()
    {
        // 'a' then two-byte characters: byte 131072 is the second byte of one, so the cut moves back one.
        var line = "a" + new string('é', 100_000);
        var printed = RunWhole(Bytes(line));
        var parts = printed.Split('\n');
        Assert.Equal(1 + 65_535, parts[0].Length);
        Assert.Equal(Segment - 1, Encoding.UTF8.GetByteCount(parts[0]));
        Assert.Equal(line, string.Concat(parts.Take(parts.Length - 2)));
        Assert.DoesNotContain('\uFFFD', printed);
        Assert.Equal(Predicted(Bytes(line), []), printed);

        // A line of exactly 128 KiB is one segment; one byte more makes two.
        Assert.Equal(2, RunWhole(Bytes(new string('x', Segment) + "\n")).Split('\n').Length - 1);
        Assert.Equal(3, RunWhole(Bytes(new string('x', Segment + 1) + "\n")).Split('\n').Length - 1);
    }

    [Fact]
    public void Every_frame_stays_far_below_1_MiB_even_when_every_character_is_escaped()
    {
        var controls = new byte[1_000_000];
        for (var i = 0; i < controls.Length; i++)
            controls[i] = (byte)(1 + (i % 8)); // \u0001..\u0008: six bytes each in JSON
        controls[500_000] = (byte)'\n';
        var framer = new JobOutputFramer();
        var messages = new List<string>();
        foreach (var chunk in controls.Chunk(300_000))
        {
            framer.Append(chunk, []);
            messages.AddRange(framer.TakeMessages());
        }
        messages.AddRange(framer.Finish().Messages);
        Assert.True(messages.Count >= 8);
        foreach (var message in messages)
        {
            var frame = JsonSerializer.SerializeToUtf8Bytes(new { message }, ApiJson.Options);
            Assert.InRange(frame.Length, 1, 800_000);
        }
        Assert.Equal(Predicted(controls, []), Printed(messages, ""));
    }

    [Fact]
    public void Short_segments_are_batched_into_messages_of_about_64_K_characters()
    {
        var lines = string.Concat(Enumerable.Range(1, 50_000).Select(i => $"{i}\n"));
        var (steps, printed) = Run(Bytes(lines), [], []);
        var messages = steps.SelectMany(s => s).ToList();
        Assert.All(messages, m => Assert.InRange(m.Length, 1, JobOutputFramer.MessageChars));
        Assert.InRange(messages.Count, 4, 10);
        Assert.Equal(lines + Status + "\n", printed);
    }

    [Fact]
    public void Invalid_utf8_is_replaced_per_segment_and_breaks_nothing()
    {
        byte[] output = [0xFF, 0xFE, (byte)'o', (byte)'k', (byte)'\n', 0xE4, 0xB8, (byte)'\n', 0xF0, 0x9F, 0x8E, 0x89, 0xC3];
        var printed = RunWhole(output, [10]);
        Assert.Equal(Predicted(output, [10]), printed);
        Assert.StartsWith("\uFFFD\uFFFDok\n\uFFFD\n", printed);
        foreach (var chunk in new[] { 1, 2, 3 })
            Assert.Equal(printed, Run(output, [10], Enumerable.Repeat(chunk, output.Length)).Printed);
    }

    [Fact]
    public void However_the_output_is_read_the_printed_bytes_are_the_same_and_follow_the_rule()
    {
        var random = new Random(14);
        string[] pieces = ["\n", "\n\n", "\r", "\rstep 3/5", "line", "ü", "世界", "🎉", "\u0001", "\t", " ", "\"\\"];
        for (var round = 0; round < 30; round++)
        {
            var output = new List<byte>();
            while (output.Count < 60_000)
            {
                if (random.Next(4000) == 0)
                    output.AddRange(Enumerable.Repeat((byte)'y', random.Next(Segment - 10, 2 * Segment)).Select((b, i) => i % 7 == 6 ? (byte)0xC3 : (i % 7 == 0 && i > 0 ? (byte)0xA9 : b)));
                else if (random.Next(40) == 0)
                    output.Add((byte)random.Next(0x80, 0x100)); // stray byte, often invalid
                else
                    output.AddRange(Bytes(pieces[random.Next(pieces.Length)]));
            }
            var bytes = output.ToArray();
            var breaks = Enumerable.Range(0, random.Next(0, 20)).Select(_ => (long)random.Next(1, bytes.Length + 1)).Distinct().Order().ToList();
            var whole = RunWhole(bytes, breaks);
            Assert.Equal(Predicted(bytes, breaks), whole);
            var chunks = Enumerable.Range(0, 1000).Select(_ => random.Next(0, random.Next(2) == 0 ? 64 : 300_000)).ToList();
            Assert.Equal(whole, Run(bytes, breaks, chunks).Printed);
        }
    }
}
