/**
 * Child process for the archiving crash test: archiving rounds on a log file, one container per
 * archive file (so that a kill lands between writing files and marking records many times over),
 * until nothing is left; killed by the test at some point on the way.
 * Usage: node --import tsx archive-writer.ts <log file> <archive dir>
 */
import { archiveRound } from '../../src/messagelog/archiver.ts';
import { MessageLogReader, messageLogLocation, openLogDatabase } from '../../src/messagelog/store.ts';

const [file, dir] = process.argv.slice(2);
const location = messageLogLocation(file!);
const db = await openLogDatabase(location.database, { create: false });
const reader = MessageLogReader.onDatabase(db, location);
const result = await archiveRound(db, (id) => reader.record(id), { dir: dir!, maxFileBytes: 1 });
process.stdout.write(JSON.stringify(result));
await db.close();
