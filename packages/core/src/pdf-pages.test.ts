import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { countPdfPages } from './pdf-pages.js';

const bytes = (...parts: Array<string | Uint8Array>) =>
  new Uint8Array(
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))),
  );

/** A PDF whose page objects are written plainly (PDF 1.4 style). */
function plainPdf(pages: number): Uint8Array {
  const kids = Array.from({ length: pages }, (_, i) => `${i + 3} 0 R`).join(' ');
  let body = `%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [${kids}] /Count ${pages} >>\nendobj\n`;
  for (let i = 0; i < pages; i++) {
    body += `${i + 3} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n`;
  }
  return bytes(`${body}trailer\n<< /Root 1 0 R >>\n%%EOF\n`);
}

/** Pages inside a compressed object stream (PDF 1.5+), the page tree's /Count left out. */
function objectStreamPdf(
  pages: number,
  filter = '/FlateDecode',
  compress: (data: Buffer) => Uint8Array = (data) => deflateSync(data),
): Uint8Array {
  const objects = Array.from(
    { length: pages },
    (_, i) => `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${i + 100} 0 R >>`,
  ).join('\n');
  const stream = compress(Buffer.from(objects, 'latin1'));
  return bytes(
    '%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n',
    `5 0 obj\n<< /Type /ObjStm /N ${pages} /First 0 /Length ${stream.length} /Filter ${filter} >>\nstream\n`,
    stream,
    '\nendstream\nendobj\n%%EOF\n',
  );
}

describe('countPdfPages', () => {
  it('counts plainly written page objects, not the /Pages node', () => {
    expect(countPdfPages(plainPdf(1))).toBe(1);
    expect(countPdfPages(plainPdf(7))).toBe(7);
  });

  it('counts pages inside compressed object streams (where a plain search finds none)', () => {
    const pdf = objectStreamPdf(40);
    expect(Buffer.from(pdf).toString('latin1')).not.toMatch(/\/Type \/Page\b/);
    expect(countPdfPages(pdf)).toBe(40);
  });

  it('takes the page tree /Count when it says more than the objects it could see', () => {
    const pdf = bytes(
      '%PDF-1.4\n2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 250 >>\nendobj\n3 0 obj\n<< /Type /Page >>\nendobj\n',
    );
    expect(countPdfPages(pdf)).toBe(250);
  });

  it('reads names spelled with #xx escapes and comments between /Type and /Page', () => {
    const pdf = bytes(
      '%PDF-1.4\n3 0 obj\n<< /Type /P#61ge >>\nendobj\n4 0 obj\n<< /Type %note\n/Page >>\nendobj\n',
    );
    expect(countPdfPages(pdf)).toBe(2);
  });

  it('cannot tell (undefined) when pages may hide where it cannot look', () => {
    // An object stream in a filter it does not read.
    expect(countPdfPages(objectStreamPdf(3, '/LZWDecode', (b: Buffer) => b))).toBeUndefined();
    // A stream that does not inflate.
    expect(countPdfPages(objectStreamPdf(3, '/FlateDecode', (b: Buffer) => b))).toBeUndefined();
    // Encrypted.
    expect(countPdfPages(bytes('%PDF-1.4\ntrailer << /Encrypt 9 0 R >>\n'))).toBeUndefined();
    // No page at all.
    expect(countPdfPages(bytes('%PDF-1.4\n%%EOF\n'))).toBeUndefined();
  });

  it('does not inflate a bomb past its limit', () => {
    const bomb = deflateSync(Buffer.alloc(20 * 1024 * 1024, 0x20)); // 20 MB of spaces, ~20 KB
    const pdf = bytes(
      '%PDF-1.7\n5 0 obj\n<< /Length 1 /Filter /FlateDecode >>\nstream\n',
      bomb,
      '\nendstream\nendobj\n3 0 obj\n<< /Type /Page >>\nendobj\n',
    );
    expect(countPdfPages(pdf)).toBeUndefined();
  });
});
