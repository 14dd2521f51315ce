import { readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { flinkRoleOf } from '#domain/flink-entrypoints.ts';
import type { Discovery, FlinkNode } from '#domain/ports.ts';

/** The one cluster of local mode: the Flink JVMs on this machine. */
export const LOCAL_CLUSTER = 'local';

/** A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat): with the pid, it names one process. */
export async function processStartTime(pid: number, procRoot = '/proc'): Promise<string | undefined> {
  try {
    const stat = await readFile(`${procRoot}/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    return state === 'Z' || state === 'X' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/**
 * Discovery of local mode: the Flink JobManager and TaskManager JVMs running on this machine, found by
 * main class in /proc. A node id is `<pid>-<start time>`: stable for the life of the process, and never
 * reused by a later process that happens to get the same pid.
 */
export class ProcDiscovery implements Discovery {
  private readonly host = hostname();

  constructor(private readonly procRoot = '/proc') {}

  async listClusters(): Promise<Array<{ id: string; nodes: number }>> {
    return [{ id: LOCAL_CLUSTER, nodes: (await this.findNodes()).length }];
  }

  async listNodes(cluster: string): Promise<FlinkNode[] | undefined> {
    return cluster === LOCAL_CLUSTER ? this.findNodes() : undefined;
  }

  private async findNodes(): Promise<FlinkNode[]> {
    const pids = (await readdir(this.procRoot)).filter((name) => /^\d+$/.test(name)).map(Number);
    const nodes = await Promise.all(pids.map((pid) => this.nodeOf(pid)));
    return nodes.filter((node): node is FlinkNode => node !== undefined).sort((a, b) => (a.pid ?? 0) - (b.pid ?? 0));
  }

  private async nodeOf(pid: number): Promise<FlinkNode | undefined> {
    let cmdline: string;
    try {
      cmdline = await readFile(`${this.procRoot}/${pid}/cmdline`, 'utf8');
    } catch {
      return undefined; // the process ended while we looked, or is not ours to read
    }
    const role = flinkRoleOf(cmdline.split('\0'));
    if (!role) return undefined;
    const startTime = await processStartTime(pid, this.procRoot);
    if (!startTime) return undefined;
    return { id: `${pid}-${startTime}`, role, host: this.host, pid, reachable: true };
  }
}
