import { describe, expect, it } from 'vitest';
import { flameGraphFrames } from '#test/support/flame-graph.ts';

// The tail of an async-profiler 3.x/4.x flame graph, written by hand. String.raw keeps the backslashes as in the file.
const compressed = String.raw`<script>
	function unpack(cpool) { /* … */ }
const cpool = [
'all',
' org/apache/flink/streaming/runtime/tasks/StreamTask.invoke',
'TrunMailboxLoop',
'Imailbox/MailboxProcessor.runMailboxLoop',
'\\essor.suspend',
' fleetprofiler/job/BusyMapFunction.fleetProfilerBusyMap',
'Bmap',
' it\'s\\here',
'\'lp'
];
unpack(cpool);

n(3,254)
u(8,1)
f(16,1,1,4)
</script>`;

describe('flameGraphFrames', () => {
  it('decodes the prefix-compressed cpool of async-profiler 3.x/4.x', () => {
    expect(flameGraphFrames(compressed)).toEqual([
      'all',
      'org/apache/flink/streaming/runtime/tasks/StreamTask.invoke',
      'org/apache/flink/streaming/runtime/tasks/StreamTask.runMailboxLoop',
      'org/apache/flink/streaming/runtime/tasks/mailbox/MailboxProcessor.runMailboxLoop',
      // first char '\\' (code 92): shares 60 characters with the previous name
      'org/apache/flink/streaming/runtime/tasks/mailbox/MailboxProcessor.suspend',
      'fleetprofiler/job/BusyMapFunction.fleetProfilerBusyMap',
      'fleetprofiler/job/BusyMapFunction.map',
      "it's\\here",
      // first char "\'" (code 39): shares 7 characters with the previous name
      "it's\\help",
    ]);
    // Why the decoder exists: the full name is not in the file.
    expect(compressed).not.toContain('StreamTask.runMailboxLoop');
  });

  it("reads the full names of async-profiler 2.x's f(...) lines and ignores the template's function f", () => {
    const legacy = String.raw`<script>
	function f(level, left, width, type, title, inln, c1, int) { }
f(0,0,254,3,'all')
f(1,0,254,1,'java/lang/Thread.run')
f(2,0,200,1,'fleetprofiler/job/BusyMapFunction.fleetProfilerBusyMap',0,12,0)
f(2,200,54,1,'it\'s\\here')
f(1,254,1,1,'java/lang/Thread.run')
</script>`;
    expect(flameGraphFrames(legacy)).toEqual([
      'all',
      'java/lang/Thread.run',
      'fleetprofiler/job/BusyMapFunction.fleetProfilerBusyMap',
      "it's\\here",
    ]);
  });

  it('rejects a truncated cpool', () => {
    expect(() => flameGraphFrames("const cpool = [\n'all',\n' java")).toThrow(/unterminated/);
  });
});
