// The machine's durable-write ceiling for one writer, measured in C with no runtime in between (issue 14): how many
// (pwrite one record-sized block at the end of what was written + fdatasync) one thread completes per second on a file
// in DIR, for three kinds of file:
//   append      - each write extends the file (the bitcask segment writer and RocksDB's WAL without preallocation):
//                 fdatasync must also write the inode's new size (ext4 without a journal: a second write per sync);
//   fallocate   - the file's space was reserved first with fallocate(2) (unwritten extents): the size does not change,
//                 but each fdatasync converts the written part of an extent from unwritten to written;
//   overwrite   - the file was filled with zeros and synced first: each fdatasync writes the data block only.
// The modes take turns in short slices (ROUNDS rounds of one slice each), so a disk whose latency changes from second
// to second (a shared VM) weighs on all three alike. Build and run:
//   gcc -O2 -o /tmp/fdatasync-probe bench/probes/fdatasync-probe.c && /tmp/fdatasync-probe DIR [seconds=6] [block=148] [rounds=12]
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MODES = 3 };
static const char *names[MODES] = { "append", "fallocate", "overwrite" };
static const off_t reserve = 64L << 20; // more than a run of a few seconds writes

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: %s DIR [seconds=6] [block=148] [rounds=12]\n", argv[0]); return 2; }
    double seconds = argc > 2 ? atof(argv[2]) : 6;
    size_t block = argc > 3 ? (size_t)atol(argv[3]) : 148;
    int rounds = argc > 4 ? atoi(argv[4]) : 12;
    char path[MODES][4096];
    int fd[MODES];
    off_t offset[MODES] = { 0 };
    long count[MODES] = { 0 };
    double spent[MODES] = { 0 };
    char *buffer = calloc(1, 1 << 20);
    for (int m = 0; m < MODES; m++)
    {
        snprintf(path[m], sizeof path[m], "%s/fdatasync-probe-%s.tmp", argv[1], names[m]);
        fd[m] = open(path[m], O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd[m] < 0) { perror(path[m]); return 1; }
        if (m == 1 && fallocate(fd[m], 0, 0, reserve) != 0) { perror("fallocate"); return 1; }
        if (m == 2)
            for (off_t at = 0; at < reserve; at += 1 << 20)
                if (pwrite(fd[m], buffer, 1 << 20, at) != 1 << 20) { perror("pwrite"); return 1; }
        fsync(fd[m]);
    }
    sync();
    memset(buffer, 'x', block);
    double slice = seconds / MODES / rounds;
    for (int r = 0; r < rounds; r++)
        for (int m = 0; m < MODES; m++)
        {
            double start = now(), elapsed;
            while ((elapsed = now() - start) < slice && offset[m] + (off_t)block < reserve)
            {
                if (pwrite(fd[m], buffer, block, offset[m]) != (ssize_t)block) { perror("pwrite"); return 1; }
                if (fdatasync(fd[m]) != 0) { perror("fdatasync"); return 1; }
                offset[m] += block;
                count[m]++;
            }
            spent[m] += elapsed;
        }
    for (int m = 0; m < MODES; m++)
    {
        printf("%-10s %8.0f writes+fdatasync/s (%zu B blocks, %d slices of %.2f s)\n", names[m], count[m] / spent[m], block, rounds, slice);
        close(fd[m]);
        unlink(path[m]);
    }
    free(buffer);
    return 0;
}
