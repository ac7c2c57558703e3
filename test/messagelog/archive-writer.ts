/**
 * Child process for the archiving crash test: archiving rounds on a log file, one container per
 * archive file (so that a kill lands between writing files and marking records many times over),
 * until nothing is left; killed by the test at some point on the way.
 * Usage: node --import tsx archive-writer.ts <log file> <archive dir>
 */
import { archiveRound } from '../../src/messagelog/archiver.ts';
import { MessageLogReader, openDatabase } from '../../src/messagelog/store.ts';

const [file, dir] = process.argv.slice(2);
const db = openDatabase(file!, { create: false });
const reader = MessageLogReader.onConnection(db, file!);
const result = await archiveRound(db, (id) => reader.record(id), { dir: dir!, maxFileBytes: 1 });
process.stdout.write(JSON.stringify(result));
db.close();
