using Microsoft.Extensions.Logging;

namespace Bitcask;

/// <summary>Every message the engine logs, source-generated (no allocation when the level is off).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information,
        Message = "Opened store {Directory} ({Mode}): {Segments} segments, {Keys} keys, {HintedSegments} loaded from hint files, in {ElapsedMs} ms")]
    public static partial void Opened(ILogger logger, string directory, string mode, int segments, long keys, int hintedSegments, long elapsedMs);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Torn tail of {File}: {Bytes} bytes from offset {Offset} {Action} ({Reason})")]
    public static partial void TornTail(ILogger logger, string file, long offset, long bytes, string action, string reason);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Damaged data in {File} at offset {Offset}: {Problem}; {Action}")]
    public static partial void Damaged(ILogger logger, string file, long offset, string problem, string action);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Segment {Sealed} sealed at {Bytes} bytes; writing to segment {Next}")]
    public static partial void RolledOver(ILogger logger, uint @sealed, long bytes, uint next);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "Removed leftover file {File}: {Reason}")]
    public static partial void RemovedLeftover(ILogger logger, string file, string reason);

    [LoggerMessage(EventId = 6, Level = LogLevel.Critical, Message = "Write path failed; the store refuses writes until reopened: {Reason}")]
    public static partial void WritePathFailed(ILogger logger, Exception exception, string reason);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "Hint file {File} not used, scanning its segment instead: {Reason}")]
    public static partial void HintRejected(ILogger logger, string file, string reason);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information,
        Message = "Compaction merged {SegmentsIn} segments ({BytesBefore} bytes) into {SegmentsOut} ({BytesAfter} bytes): kept {Kept}, dropped {Dropped}, expired {Expired} in {ElapsedMs} ms")]
    public static partial void Compacted(ILogger logger, int segmentsIn, long bytesBefore, int segmentsOut, long bytesAfter, long kept, long dropped, long expired, long elapsedMs);

    [LoggerMessage(EventId = 9, Level = LogLevel.Error, Message = "Compaction failed; the segments it read are unchanged: {Reason}")]
    public static partial void CompactionFailed(ILogger logger, Exception exception, string reason);

    [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "Could not write hint file for segment {SegmentId}: {Reason}")]
    public static partial void HintWriteFailed(ILogger logger, uint segmentId, string reason);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "Compaction committed, but {Step} failed; the next open finishes it: {Reason}")]
    public static partial void CompactionStepLeftToOpen(ILogger logger, string step, string reason);
}
