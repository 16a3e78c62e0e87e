// Child process for survive.test.ts: creates and starts a container, prints its pid, then dies hard.
import { RuntimeDriver, buildSpec } from '../../src/runtime/index.ts';

const [runcRoot, stateDir, rootfs, bundle, id, cgroupsPath, logPath] = process.argv.slice(2) as string[];
const driver = new RuntimeDriver({ runcRoot: runcRoot!, stateDir: stateDir! });
await driver.writeBundle(bundle!, buildSpec({ rootfs: rootfs!, args: ['sh', '-c', 'echo started; exec sleep 1000'], cgroupsPath }));
const { pid } = await driver.create(id!, bundle!, { logPath, stdin: true });
await driver.start(id!);
process.stdout.write(`${pid}\n`, () => process.kill(process.pid, 'SIGKILL'));
