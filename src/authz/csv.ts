import path from 'node:path';

/** A file's name for messages: relative to the working directory when inside it, else absolute. */
export function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : path.resolve(file);
}

/** Splits one CSV line: fields separated by commas, double-quoted fields may hold commas and "" for a quote. */
export function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i <= line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= line.length) throw new Error('unterminated quoted field');
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += line[i++];
      }
      while (line[i] === ' ' || line[i] === '\t') i++;
      if (i < line.length && line[i] !== ',') throw new Error(`unexpected text after a quoted field at column ${i + 1}`);
      fields.push(value);
    } else {
      const end = line.indexOf(',', i);
      fields.push(line.slice(i, end === -1 ? line.length : end).trim());
      i = end === -1 ? line.length : end;
    }
    i++;
  }
  return fields;
}

/** The meaningful lines of a file: numbered from 1, without blanks and `#` comments. */
export function csvLines(text: string): Array<{ line: number; fields: string[] } | { line: number; error: string }> {
  const out: Array<{ line: number; fields: string[] } | { line: number; error: string }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (!trimmed || trimmed.startsWith('#')) return;
    try {
      out.push({ line: i + 1, fields: splitCsvLine(trimmed) });
    } catch (err) {
      out.push({ line: i + 1, error: (err as Error).message });
    }
  });
  return out;
}
