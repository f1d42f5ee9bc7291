/**
 * Child processes of the harness and what the kernel says about them. Every child is
 * spawned detached (its own process group) and registered, so `killAll()` can end each
 * group by its id at the end of a run, on a signal, or when the watchdog fires. CPU and
 * memory come from /proc (utime + stime, VmRSS, VmHWM), so a server is measured without
 * asking it anything.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

const children = new Set();

/** Clock ticks per second of /proc/<pid>/stat times (100 on every Linux we run on). */
export const CLK_TCK = 100;

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Spawns `command` in its own process group and remembers it. `output` collects stdout and
 * stderr (last 64 kB) for error messages.
 */
export function spawnChild(command, args, { env = {}, stdin = 'ignore', name = command } = {}) {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: [stdin, 'pipe', 'pipe'],
    detached: true,
  });
  child.benchName = name;
  child.output = '';
  const keep = (chunk) => {
    child.output += chunk.toString();
    if (child.output.length > 65_536) child.output = child.output.slice(-32_768);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Resolves with the first stdout/stderr line matching `pattern`; rejects on exit or timeout. */
export function waitForLine(child, pattern, timeoutMs) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stderr.off('data', onData);
      child.off('exit', onExit);
    };
    const onData = (chunk) => {
      seen += chunk.toString();
      const line = seen.split('\n').find((l) => pattern.test(l));
      if (line !== undefined) {
        cleanup();
        resolve(line);
      }
    };
    const onExit = (code, signal) => {
      cleanup();
      reject(
        new Error(
          `${child.benchName} exited (${code ?? signal}) before printing ${pattern}:\n${child.output.slice(-4_000)}`,
        ),
      );
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `${child.benchName} did not print ${pattern} within ${timeoutMs} ms:\n${child.output.slice(-4_000)}`,
        ),
      );
    }, timeoutMs);
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Ends one child's process group: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child, graceMs = 1_000) {
  if (child.exitCode !== null || child.signalCode !== null) {
    children.delete(child);
    return;
  }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    finalCpuMs.set(child.pid, cpuMs(child.pid));
  } catch {}
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  // Grandchildren (none today) would still be in the group.
  signalGroup(child, 'SIGKILL');
  children.delete(child);
}

function signalGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** Process ids of every registered child still running. */
export function livePids() {
  return [...children]
    .filter((c) => c.exitCode === null && c.signalCode === null)
    .map((c) => c.pid);
}

/** CPU time of children read just before they were stopped (their last reading). */
const finalCpuMs = new Map();

/**
 * Watches how much CPU the rest of the machine uses while the harness runs: every second,
 * all CPU time used (from /proc/stat) minus what this process and its children used.
 * `stop()` returns the average, p90 and busiest second, in cores.
 */
export function watchBackgroundLoad() {
  const machineBusyMs = () => {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + (fields[7] ?? 0);
    return (busy * 1000) / CLK_TCK;
  };
  let lastCpu = new Map();
  const readOurs = () => {
    const now = new Map();
    let delta = 0;
    for (const pid of new Set([process.pid, ...livePids(), ...lastCpu.keys()])) {
      let value;
      try {
        value = cpuMs(pid);
      } catch {
        value = finalCpuMs.get(pid) ?? lastCpu.get(pid) ?? 0;
        finalCpuMs.delete(pid);
        delta += Math.max(0, value - (lastCpu.get(pid) ?? value));
        continue;
      }
      now.set(pid, value);
      // A process born since the last reading used all its CPU time within this second.
      delta += value - (lastCpu.get(pid) ?? 0);
    }
    lastCpu = now;
    return delta;
  };
  readOurs();
  let last = { t: performance.now(), machine: machineBusyMs() };
  const seconds = [];
  const timer = setInterval(() => {
    const t = performance.now();
    const machine = machineBusyMs();
    const ours = readOurs();
    seconds.push(Math.max(0, machine - last.machine - ours) / (t - last.t));
    last = { t, machine };
  }, 1_000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      const sorted = [...seconds].sort((a, b) => a - b);
      return {
        averageCores: seconds.reduce((a, b) => a + b, 0) / Math.max(1, seconds.length),
        p90Cores: sorted[Math.floor(sorted.length * 0.9)] ?? 0,
        maxCores: sorted.at(-1) ?? 0,
        seconds: seconds.length,
      };
    },
  };
}

/** SIGKILLs every process group still registered (synchronous: usable in 'exit'). */
export function killAll() {
  for (const child of children) signalGroup(child, 'SIGKILL');
  children.clear();
}

/**
 * CPU time (user + system) of a process in ms, from /proc/<pid>/stat; of one of its
 * threads with `tid` (/proc/<pid>/task/<tid>/stat, the same fields).
 */
export function cpuMs(pid, tid) {
  const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
  const stat = readFileSync(path, 'utf8');
  // Fields after the command name, which may contain spaces: state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / CLK_TCK;
}

/** Resident set size now and its high-water mark, in bytes, from /proc/<pid>/status. */
export function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Resets VmHWM to the current RSS (Linux `clear_refs` 5); false when not permitted. */
export function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The soft limit on open files of this process (what children inherit). */
export function openFileLimit() {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (!match || match[1] === 'unlimited') return Number.POSITIVE_INFINITY;
    return Number(match[1]);
  } catch {
    return 1_024;
  }
}

/** Starts a private, non-persistent redis-server on a free loopback port. */
export async function startRedis() {
  const binary = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find(existsSync);
  if (!binary) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const port = await freePort();
  const child = spawnChild(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { name: 'redis-server' },
  );
  await waitForLine(child, /Ready to accept connections/, 10_000);
  return { child, port, url: `redis://127.0.0.1:${port}` };
}
