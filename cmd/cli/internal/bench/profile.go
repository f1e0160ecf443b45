package bench

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"
)

// measure marks one measured phase: with Config.ProfileDir set, it writes
// a CPU profile of the phase to <dir>/<name>.pprof, and it logs the CPU time
// this process spent per message.
func (e *env) measure(name string, n int) (done func()) {
	var f *os.File
	if e.cfg.ProfileDir != "" {
		var err error
		f, err = os.Create(filepath.Join(e.cfg.ProfileDir, name+".pprof"))
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
				f = nil
			}
		}
		if err != nil {
			e.logf("profile %s: %v", name, err)
		}
	}
	cpu0, t0 := cpuTime(), time.Now()
	return func() {
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
		}
		cpu := cpuTime() - cpu0
		e.logf("%s: %.1f s, this process's CPU %.1f s (%.1f µs a message)", name, time.Since(t0).Seconds(),
			cpu.Seconds(), float64(cpu.Microseconds())/float64(max(n, 1)))
	}
}

// cpuTime is the user and system CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
