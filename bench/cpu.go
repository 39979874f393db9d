package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPUUse is the CPU time processes spent during a run.
type CPUUse struct {
	// PerCallUs is CPU time per successful call, in microseconds, by
	// process.
	PerCallUs map[string]float64 `json:"per_call_us"`
	// BusyPercent is how busy the whole machine was (100 = every core);
	// OtherPercent the part of it that processes outside the run took —
	// other work sharing the machine, which slows everything measured.
	BusyPercent  float64 `json:"busy_percent"`
	OtherPercent float64 `json:"other_percent"`
}

// clockTick is the unit of /proc CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuMeter reads the CPU time of named processes and of the machine.
type cpuMeter struct {
	names []string
	pids  []int
	start []int64 // ticks per process
	busy  int64   // machine busy ticks
	total int64   // machine total ticks
}

// meter starts measuring the named processes (pid 0 is this process).
func meter(procs map[string]int) *cpuMeter {
	m := &cpuMeter{}
	for name, pid := range procs {
		if pid == 0 {
			pid = os.Getpid()
		}
		m.names = append(m.names, name)
		m.pids = append(m.pids, pid)
		t, _ := procTicks(pid)
		m.start = append(m.start, t)
	}
	m.busy, m.total, _ = machineTicks()
	return m
}

// stop returns the use since the meter started, per call of calls.
func (m *cpuMeter) stop(calls int) CPUUse {
	u := CPUUse{PerCallUs: map[string]float64{}}
	var ours int64
	for i, pid := range m.pids {
		t, err := procTicks(pid)
		if err != nil {
			continue
		}
		d := t - m.start[i]
		ours += d
		if calls > 0 {
			u.PerCallUs[m.names[i]] = float64(d) * float64(clockTick/time.Microsecond) / float64(calls)
		}
	}
	busy, total, err := machineTicks()
	if err == nil && total > m.total {
		db, dt := busy-m.busy, total-m.total
		u.BusyPercent = 100 * float64(db) / float64(dt)
		u.OtherPercent = max(0, 100*float64(db-ours)/float64(dt))
	}
	return u
}

// procTicks is a process's user + system CPU time, in clock ticks.
func procTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces
	if i < 0 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: unreadable", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: short", pid)
	}
	// Fields 14 and 15 of stat (utime, stime) are 12 and 13 after ")".
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc/%d/stat: unreadable times", pid)
	}
	return u + st, nil
}

// machineTicks returns the machine's busy and total CPU ticks.
func machineTicks() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("bench: /proc/stat: unreadable")
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if i >= 7 { // guest time is counted in user already
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}
