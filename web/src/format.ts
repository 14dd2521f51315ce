/** How the UI writes times and durations: Flink's `yyyy-MM-dd HH:mm:ss`, in the browser's time zone. */

const pad = (value: number) => String(value).padStart(2, '0');

export function formatTime(epochMs: number | null | undefined): string {
  if (epochMs === null || epochMs === undefined) return '—';
  const t = new Date(epochMs);
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}

export function formatClock(epochMs: number): string {
  const t = new Date(epochMs);
  return `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}

export function formatSeconds(seconds: number): string {
  return `${seconds} s`;
}

const ROLE_NAMES = { jobmanager: 'JobManager', taskmanager: 'TaskManager' } as const;

export function roleName(role: keyof typeof ROLE_NAMES): string {
  return ROLE_NAMES[role];
}
