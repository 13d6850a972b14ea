// The machine's durable-write ceiling for one writer, measured in C with no runtime in between (issue 14):
// how many (pwrite one record-sized block + fdatasync) a second one thread completes on a file in DIR, in three ways:
//   append      - each write extends the file (what the bitcask segment writer and RocksDB's WAL do without preallocation):
//                 fdatasync must also journal the new file size;
//   fallocate   - the file's space is reserved first with fallocate(2) (unwritten extents): each fdatasync still journals
//                 the extent's conversion from unwritten to written;
//   overwrite   - the file was written with zeros and synced first: each fdatasync only writes the data block.
// Build and run:  gcc -O2 -o /tmp/fdatasync-probe bench/probes/fdatasync-probe.c && /tmp/fdatasync-probe DIR [seconds] [block]
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double run(const char *dir, const char *mode, double seconds, size_t block)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/fdatasync-probe-%s.tmp", dir, mode);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { perror(path); exit(1); }
    const off_t reserve = 256L << 20; // more than any run writes
    char *buffer = calloc(1, 1 << 20);
    if (strcmp(mode, "fallocate") == 0)
    {
        if (fallocate(fd, 0, 0, reserve) != 0) { perror("fallocate"); exit(1); }
        fsync(fd);
    }
    else if (strcmp(mode, "overwrite") == 0)
    {
        for (off_t at = 0; at < reserve; at += 1 << 20)
            if (pwrite(fd, buffer, 1 << 20, at) != 1 << 20) { perror("pwrite"); exit(1); }
        fsync(fd);
    }
    memset(buffer, 'x', block);
    long count = 0;
    off_t offset = 0;
    double start = now(), elapsed;
    while ((elapsed = now() - start) < seconds && offset + (off_t)block < reserve)
    {
        if (pwrite(fd, buffer, block, offset) != (ssize_t)block) { perror("pwrite"); exit(1); }
        if (fdatasync(fd) != 0) { perror("fdatasync"); exit(1); }
        offset += block;
        count++;
    }
    close(fd);
    unlink(path);
    free(buffer);
    return count / elapsed;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: %s DIR [seconds=3] [block=148]\n", argv[0]); return 2; }
    double seconds = argc > 2 ? atof(argv[2]) : 3;
    size_t block = argc > 3 ? (size_t)atol(argv[3]) : 148;
    const char *modes[] = { "append", "fallocate", "overwrite" };
    for (int i = 0; i < 3; i++)
        printf("%-10s %8.0f writes+fdatasync/s (%zu B blocks, %.0f s)\n", modes[i], run(argv[1], modes[i], seconds, block), block, seconds);
    return 0;
}
