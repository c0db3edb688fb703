using System.Globalization;
using System.Text.Json;
using OpenPool.Contracts;

namespace OpenPool.Engine.Http;

/// <summary>
/// Reads a JSON request body field by field and collects every problem, the way FastAPI/pydantic
/// report them (<c>loc</c>, <c>msg</c>, <c>type</c>), so a client sees all its mistakes in one 422.
/// Deserializing into a record would stop at the first bad field and phrase errors in .NET terms.
/// </summary>
internal sealed class JsonBody
{
    private readonly JsonElement _root;
    private readonly List<ValidationError> _errors = [];

    private JsonBody(JsonElement root) => _root = root;

    /// <summary>Reads the body; malformed JSON or a non-object body is a 422 at once.</summary>
    public static async Task<JsonBody> ReadAsync(HttpRequest request, bool allowEmpty = false)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        if (buffer.Length == 0)
        {
            if (allowEmpty)
                return new JsonBody(JsonDocument.Parse("{}").RootElement.Clone());
            throw ApiError.Validation(["body"], "missing", "Field required");
        }
        var bytes = buffer.ToArray();
        // The parser validates UTF-8 lazily (not in property names), so check the whole body up front.
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
            throw ApiError.Validation(["body", 0], "json_invalid", "JSON decode error");
        var root = Parse(bytes, allowDuplicateKeys: true, "JSON decode error");
        // A key sent twice is valid JSON, but which value counts differs between parsers (a proxy or
        // a log may read the first, this engine the last): refuse it rather than guess. Parsed again
        // so the message can say it is a duplicate, not merely "invalid".
        Parse(bytes, allowDuplicateKeys: false, "JSON object has a duplicate key; send each field once");
        if (root.ValueKind != JsonValueKind.Object)
            throw ApiError.Validation(["body"], "model_attributes_type", "Input should be a valid dictionary or object to extract fields from");
        return new JsonBody(root);
    }

    private static JsonElement Parse(byte[] bytes, bool allowDuplicateKeys, string failure)
    {
        try
        {
            using var document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 32, AllowDuplicateProperties = allowDuplicateKeys });
            return document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw ApiError.Validation(
                [new ValidationError { Loc = ["body", (int)(ex.BytePositionInLine ?? 0)], Type = "json_invalid", Msg = failure }]);
        }
    }

    public bool Has(string name) => _root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public string? String(string name, bool required = false, int maxLength = 1024)
    {
        if (!Present(name, required, out var value))
            return null;
        if (value.ValueKind != JsonValueKind.String)
            return Fail<string>(name, "string_type", "Input should be a valid string");
        if (!TryText(value, out var text))
            return Fail<string>(name, "string_unicode", NotUnicode);
        if (text.Length > maxLength)
            return Fail<string>(name, "string_too_long", $"String should have at most {maxLength} characters");
        return text;
    }

    public int? Int(string name, bool required = false, int? min = null, int? max = null)
    {
        if (!Present(name, required, out var value))
            return null;
        int result;
        switch (value.ValueKind)
        {
            case JsonValueKind.Number when value.TryGetInt32(out result):
                break;
            case JsonValueKind.Number when value.TryGetDouble(out var d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue:
                result = (int)d;
                break;
            case JsonValueKind.Number when !value.TryGetDouble(out var whole) || whole == Math.Floor(whole):
                // A whole number beyond int's range (1e20, 1e400): out of bounds, not "fractional".
                return value.GetRawText().StartsWith('-')
                    ? Fail<int?>(name, "greater_than_equal", $"Input should be greater than or equal to {min ?? int.MinValue}")
                    : Fail<int?>(name, "less_than_equal", $"Input should be less than or equal to {max ?? int.MaxValue}");
            case JsonValueKind.Number:
                return Fail<int?>(name, "int_from_float", "Input should be a valid integer, got a number with a fractional part");
            case JsonValueKind.String when TryText(value, out var intText) && int.TryParse(intText, NumberStyles.Integer, CultureInfo.InvariantCulture, out result):
                break;
            case JsonValueKind.String:
                return Fail<int?>(name, "int_parsing", "Input should be a valid integer, unable to parse string as an integer");
            default:
                return Fail<int?>(name, "int_type", "Input should be a valid integer");
        }
        if (min is { } lo && result < lo)
            return Fail<int?>(name, "greater_than_equal", $"Input should be greater than or equal to {lo}");
        if (max is { } hi && result > hi)
            return Fail<int?>(name, "less_than_equal", $"Input should be less than or equal to {hi}");
        return result;
    }

    /// <summary>
    /// A number within [<paramref name="min"/>, <paramref name="max"/>]. The bounds are not optional:
    /// amounts end up as micro-dollars in a 64-bit column, so an unbounded one (1e20) would overflow
    /// there instead of being refused here.
    /// </summary>
    public decimal? Decimal(string name, decimal min, decimal max, bool required = false)
    {
        if (!Present(name, required, out var value))
            return null;
        decimal number;
        switch (value.ValueKind)
        {
            case JsonValueKind.Number when value.TryGetDecimal(out number):
                break;
            case JsonValueKind.Number:
                // Valid JSON but beyond decimal's range (1e300): certainly beyond the bounds.
                return value.GetRawText().StartsWith('-') ? BelowMin(name, min) : AboveMax(name, max);
            case JsonValueKind.String when TryText(value, out var decimalText) && decimal.TryParse(decimalText, NumberStyles.Float, CultureInfo.InvariantCulture, out number):
                break;
            case JsonValueKind.String:
                return Fail<decimal?>(name, "float_parsing", "Input should be a valid number, unable to parse string as a number");
            default:
                return Fail<decimal?>(name, "float_type", "Input should be a valid number");
        }
        if (number < min)
            return BelowMin(name, min);
        if (number > max)
            return AboveMax(name, max);
        return number;
    }

    private decimal? BelowMin(string name, decimal min) =>
        Fail<decimal?>(name, "greater_than_equal", FormattableString.Invariant($"Input should be greater than or equal to {min}"));

    private decimal? AboveMax(string name, decimal max) =>
        Fail<decimal?>(name, "less_than_equal", FormattableString.Invariant($"Input should be less than or equal to {max}"));

    public bool? Bool(string name, bool required = false)
    {
        if (!Present(name, required, out var value))
            return null;
        switch (value.ValueKind)
        {
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            case JsonValueKind.Number when value.TryGetInt32(out var n) && n is 0 or 1: return n == 1;
            case JsonValueKind.String when TryText(value, out var boolText) && BoolText.TryParse(boolText, out var b): return b;
            case JsonValueKind.String:
            case JsonValueKind.Number:
                return Fail<bool?>(name, "bool_parsing", "Input should be a valid boolean, unable to interpret input");
            default:
                return Fail<bool?>(name, "bool_type", "Input should be a valid boolean");
        }
    }

    public IReadOnlyList<string>? StringList(string name, bool required = false, int maxItems = 100, int maxLength = 16384)
    {
        if (!Present(name, required, out var value))
            return null;
        if (value.ValueKind != JsonValueKind.Array)
            return Fail<IReadOnlyList<string>>(name, "list_type", "Input should be a valid list");
        var items = new List<string>();
        var index = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                _errors.Add(new ValidationError { Loc = ["body", name, index], Type = "string_type", Msg = "Input should be a valid string" });
            else if (!TryText(item, out var itemText))
                _errors.Add(new ValidationError { Loc = ["body", name, index], Type = "string_unicode", Msg = NotUnicode });
            else if (itemText.Length > maxLength)
                _errors.Add(new ValidationError { Loc = ["body", name, index], Type = "string_too_long", Msg = $"String should have at most {maxLength} characters" });
            else
                items.Add(itemText);
            index++;
        }
        if (index > maxItems)
            return Fail<IReadOnlyList<string>>(name, "too_long", $"List should have at most {maxItems} items");
        return items;
    }

    /// <summary>Adds a rule failure found after reading (e.g. a cross-field rule).</summary>
    public void Reject(string name, string type, string msg) =>
        _errors.Add(new ValidationError { Loc = ["body", name], Type = type, Msg = msg });

    /// <summary>Throws one 422 listing every problem found so far.</summary>
    public void ThrowIfInvalid()
    {
        if (_errors.Count > 0)
            throw ApiError.Validation(_errors);
    }

    /// <summary>
    /// A JSON string's text; false when it holds an escaped lone surrogate ("\ud800"), which is valid
    /// JSON but no valid text, and which <see cref="JsonElement.GetString"/> refuses with an exception.
    /// Also what WebSocket frames are read with (<see cref="Jobs.JobSockets"/>).
    /// </summary>
    internal static bool TryText(JsonElement value, out string text)
    {
        try
        {
            text = value.GetString()!;
            return true;
        }
        catch (InvalidOperationException)
        {
            text = "";
            return false;
        }
    }

    private const string NotUnicode = "Input should be a valid string, unable to parse raw data as a unicode string";

    private bool Present(string name, bool required, out JsonElement value)
    {
        if (_root.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null)
            return true;
        if (required)
            _errors.Add(new ValidationError { Loc = ["body", name], Type = "missing", Msg = "Field required" });
        return false;
    }

    private T? Fail<T>(string name, string type, string msg)
    {
        _errors.Add(new ValidationError { Loc = ["body", name], Type = type, Msg = msg });
        return default;
    }
}

internal static class BoolText
{
    /// <summary>Accepts what pydantic accepts for booleans; Python's requests sends <c>True</c>/<c>False</c> in queries.</summary>
    public static bool TryParse(string? text, out bool value)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "true" or "1" or "yes" or "on" or "t" or "y":
                value = true;
                return true;
            case "false" or "0" or "no" or "off" or "f" or "n":
                value = false;
                return true;
            default:
                value = false;
                return false;
        }
    }
}

internal static class Query
{
    /// <summary>An optional boolean query parameter; anything unreadable is a 422 naming the parameter.</summary>
    public static bool Bool(HttpRequest request, string name, bool fallback = false)
    {
        var raw = request.Query[name];
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[^1]))
            return fallback;
        if (BoolText.TryParse(raw[^1], out var value))
            return value;
        throw ApiError.Validation(["query", name], "bool_parsing", "Input should be a valid boolean, unable to interpret input");
    }

    public static int Int(HttpRequest request, string name, int fallback, int min, int max)
    {
        var raw = request.Query[name];
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[^1]))
            return fallback;
        if (!int.TryParse(raw[^1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            throw ApiError.Validation(["query", name], "int_parsing", "Input should be a valid integer, unable to parse string as an integer");
        if (value < min)
            throw ApiError.Validation(["query", name], "greater_than_equal", $"Input should be greater than or equal to {min}");
        if (value > max)
            throw ApiError.Validation(["query", name], "less_than_equal", $"Input should be less than or equal to {max}");
        return value;
    }

    public static string? String(HttpRequest request, string name, int maxLength = 256)
    {
        var raw = request.Query[name];
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[^1]))
            return null;
        var text = raw[^1]!;
        if (text.Length > maxLength)
            throw ApiError.Validation(["query", name], "string_too_long", $"String should have at most {maxLength} characters");
        return text;
    }
}
