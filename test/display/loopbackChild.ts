/**
 * The child process of test/display/loopback.test.ts's shutdown test: opens a loopback route,
 * prints it as one JSON line, and on a line from stdin stops reading stdin. With nothing else to
 * do it must then exit (code 0, printing "exit"), whatever connections the server still holds.
 */
import { openLoopbackRoute } from '../../lib/display/loopback';

void openLoopbackRoute('child', () => ({ status: 'ok' })).then((route) => {
  process.stdout.write(`${JSON.stringify(route)}\n`);
  process.stdin.once('data', () => {
    process.stdin.destroy();
    process.on('exit', () => process.stdout.write('exit\n'));
  });
});
