import { createWriteStream, existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import PDFDocument from 'pdfkit';
import { guardedTempPath } from '../core/index.ts';
import type { ReportSection } from './document.ts';

const FONT_DIR = '/usr/share/fonts/truetype/dejavu';

/**
 * The same content as the HTML report, paginated: a title page, a table of contents with page numbers
 * (written last into the page reserved for it), sections with facts, tables and charts, and "page N of M"
 * in every footer. pdfkit writes the PDF in pure JavaScript; DejaVu Sans is used where installed.
 */
export async function renderReportPdf(path: string, title: string, subtitle: string, sections: ReportSection[]): Promise<void> {
  const doc = new PDFDocument({
    size: 'A4',
    margins: { top: 56, bottom: 64, left: 56, right: 56 },
    bufferPages: true,
    info: { Title: title, Producer: 'gradelab' },
  });
  const { tmp, release } = guardedTempPath(path);
  const stream = createWriteStream(tmp, { flags: 'r+' });
  doc.pipe(stream);
  const regular = existsSync(`${FONT_DIR}/DejaVuSans.ttf`) ? `${FONT_DIR}/DejaVuSans.ttf` : 'Helvetica';
  const bold = existsSync(`${FONT_DIR}/DejaVuSans-Bold.ttf`) ? `${FONT_DIR}/DejaVuSans-Bold.ttf` : 'Helvetica-Bold';
  const width = doc.page.width - 112;
  const ensure = (h: number) => {
    if (doc.y + h > doc.page.height - 70) doc.addPage();
  };

  doc.font(bold).fontSize(22).text(title, { width });
  doc.moveDown(0.5).font(regular).fontSize(11).fillColor('#555').text(subtitle, { width }).fillColor('#000');
  doc.addPage(); // reserved for the table of contents
  const pages: number[] = [];
  sections.forEach((s, i) => {
    doc.addPage();
    pages.push(doc.bufferedPageRange().start + doc.bufferedPageRange().count);
    doc
      .font(bold)
      .fontSize(16)
      .fillColor('#1f4e79')
      .text(`${i + 1}. ${s.title}`, { width })
      .fillColor('#000');
    doc.moveDown(0.5);
    for (const m of s.missing) {
      ensure(30);
      doc.font(bold).fontSize(10).fillColor('#9a6700').text(`MISSING: ${m}`, { width }).fillColor('#000');
      doc.moveDown(0.3);
    }
    doc.font(regular).fontSize(10);
    for (const t of s.text) {
      ensure(30);
      doc.text(t, { width });
      doc.moveDown(0.4);
    }
    for (const [k, v] of s.facts) {
      ensure(16);
      doc.font(bold).text(`${k}: `, { continued: true, width }).font(regular).text(v, { width });
    }
    if (s.facts.length) doc.moveDown(0.5);
    for (const t of s.tables) {
      ensure(40);
      doc.font(bold).fontSize(10).text(t.caption, { width });
      doc.moveDown(0.2);
      const cols = t.header.length;
      const colW = width / cols;
      const row = (cells: string[], header: boolean, link?: string) => {
        doc.font(header ? bold : regular).fontSize(7.5);
        const h = Math.max(...cells.map((c) => doc.heightOfString(c, { width: colW - 4 }))) + 4;
        ensure(h);
        const y = doc.y;
        cells.forEach((c, j) => {
          if (/^FAIL$/.test(c)) doc.fillColor('#cf222e');
          else if (/^PASS$/.test(c)) doc.fillColor('#1a7f37');
          const href = j === cells.length - 1 ? link : undefined;
          if (href) doc.fillColor('#1f4e79');
          doc.text(c, 56 + j * colW + 2, y + 2, { width: colW - 4, link: href, underline: !!href });
          doc.fillColor('#000');
        });
        doc
          .moveTo(56, y + h)
          .lineTo(56 + width, y + h)
          .strokeColor('#ccc')
          .lineWidth(0.5)
          .stroke();
        doc.x = 56;
        doc.y = y + h;
      };
      row(t.header, true);
      t.rows.forEach((r, i) => row(r, false, t.links?.[i]));
      doc.moveDown(0.8);
    }
    for (const c of s.charts) {
      ensure(260);
      const y = doc.y;
      doc.image(c.png, 56, y, { fit: [width, 240], align: 'center' });
      doc.y = y + 245;
      doc.font(regular).fontSize(8).fillColor('#555').text(c.title, 56, doc.y, { width, align: 'center' }).fillColor('#000');
      doc.moveDown(0.8);
    }
  });

  // Table of contents on page 2, with the page each section starts on.
  doc.switchToPage(1);
  doc.x = 56;
  doc.y = 56;
  doc.font(bold).fontSize(16).text('Contents', { width });
  doc.moveDown(0.5).font(regular).fontSize(11);
  sections.forEach((s, i) => {
    const y = doc.y;
    doc.text(`${i + 1}. ${s.title}`, 56, y, { width: width - 40 });
    doc.text(String(pages[i]), 56 + width - 40, y, { width: 40, align: 'right' });
    doc.y = Math.max(doc.y, y + 16);
  });
  const range = doc.bufferedPageRange();
  for (let p = range.start; p < range.start + range.count; p++) {
    doc.switchToPage(p);
    // Writing inside the bottom margin would otherwise make pdfkit start a new page.
    doc.page.margins.bottom = 0;
    doc
      .font(regular)
      .fontSize(8)
      .fillColor('#777')
      .text(`${title}  -  page ${p + 1} of ${range.count}`, 56, doc.page.height - 40, { width, align: 'center', lineBreak: false });
  }
  doc.end();
  try {
    await new Promise<void>((res, rej) => {
      stream.on('finish', () => res());
      stream.on('error', rej);
    });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    release();
  }
}
