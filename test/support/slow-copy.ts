/**
 * A copy that trickles its blobs and prints each finished one, for tests that kill a copy half-way:
 *   node slow-copy.js SOURCE DESTINATION
 */
import { copyImage } from '../../src/copy/copy.js';
import { openDestination } from '../../src/copy/open-destination.js';
import { openSource } from '../../src/sources/open.js';
import { slowSource } from '../push/helpers.js';

const [from, to] = process.argv.slice(2);
const source = slowSource(await openSource(from!), 64 * 1024, 20);
const destination = await openDestination(to!);
await copyImage(source, destination, {
  jobs: 1,
  onEvent: (event) => {
    if (event.type === 'blob-done') process.stdout.write(`done ${event.digest}\n`);
  },
});
