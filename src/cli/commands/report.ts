import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Argv } from 'yargs';
import { ConfigError, log, readModelMeta, sha256File, writeFileAtomic } from '../../core/index.ts';
import { loadSplit, openTileDataset, partitionOf } from '../../data/index.ts';
import {
  chartIf,
  loadIntendedUse,
  type Comparison,
  readJsonIf,
  renderReportHtml,
  renderReportPdf,
  section,
  type ReportSection,
} from '../../eval/index.ts';
import { FileStore, openStore, provenanceTags } from '../../track/index.ts';

const est = (e: any, d = 3) =>
  e && typeof e.value === 'number'
    ? `${e.value.toFixed(d)} (${e.ci95?.[0] === null || e.ci95?.[0] === undefined ? 'n/a' : e.ci95[0].toFixed(d)}-${e.ci95?.[1] === null || e.ci95?.[1] === undefined ? 'n/a' : e.ci95[1].toFixed(d)})`
    : 'n/a';
const width = (e: any) => (e && Number.isFinite(e.ci95?.[0]) && Number.isFinite(e.ci95?.[1]) ? (e.ci95[1] - e.ci95[0]).toFixed(3) : 'n/a');

function resolveModelDir(run: string, trackingDir?: string): string {
  if (existsSync(join(run, 'gradelab.json'))) return run;
  const store = openStore({ trackingDir });
  if (store instanceof FileStore) {
    const r = store.listRuns().find((x) => x.runId.startsWith(run));
    if (r?.tags['gradelab.out_dir'] && existsSync(join(r.tags['gradelab.out_dir'], 'gradelab.json'))) return r.tags['gradelab.out_dir'];
  }
  throw new ConfigError(`--run ${run}: not a model directory, nor a training run with one`);
}

export function reportCommand(y: Argv): Argv {
  return y.command(
    'report',
    'Write the submission report (HTML, PDF, JSON) of a model: intended use, data, reference standard, model, performance with CIs, referral, robustness, OOD, limitations, traceability',
    (c) =>
      c
        .option('run', { type: 'string', demandOption: true, describe: 'model directory or training run id' })
        .option('out', { type: 'string', demandOption: true })
        .option('eval', { type: 'string', describe: 'gradelab eval output folder' })
        .option('ood', { type: 'string', describe: 'gradelab ood eval output folder' })
        .option('robustness', { type: 'string', array: true, describe: 'robustness output folders' })
        .option('audit', { type: 'string', describe: 'gradelab audit output folder' })
        .option('compare', { type: 'string', array: true, describe: 'gradelab compare output folders (paired comparisons)' })
        .option('intended-use', {
          type: 'string',
          describe: 'YAML with intendedUse, users, workflowPosition, outOfScope, referenceStandard, limitations',
        })
        .option('tracking-dir', { type: 'string' }),
    async (argv) => {
      const modelDir = resolveModelDir(argv.run, argv['tracking-dir']);
      const meta = readModelMeta(modelDir);
      const config = existsSync(join(modelDir, 'config.yaml')) ? parseYaml(readFileSync(join(modelDir, 'config.yaml'), 'utf8')) : undefined;
      const use = loadIntendedUse(argv['intended-use']);
      const metrics = readJsonIf(argv.eval && join(argv.eval, 'metrics.json'));
      const ood = readJsonIf(argv.ood && join(argv.ood, 'ood.json'));
      const audit = readJsonIf(argv.audit && join(argv.audit, 'audit.json'));
      const suites = (argv.robustness ?? []).map((d) => ({ dir: d, r: readJsonIf(join(d, 'results.json')) }));
      const comparisons = (argv.compare ?? []).map((d) => ({ dir: d, c: readJsonIf(join(d, 'compare.json')) as Comparison | undefined }));
      for (const { dir, c } of comparisons) if (!c) throw new ConfigError(`--compare ${dir}: no compare.json there (run gradelab compare)`);
      for (const [flag, dir, v] of [
        ['--eval', argv.eval, metrics],
        ['--ood', argv.ood, ood],
        ['--audit', argv.audit, audit],
      ] as const) {
        if (dir && !v) throw new ConfigError(`${flag} ${dir}: no results there`);
      }
      const sections: ReportSection[] = [];
      const need = (s: ReportSection, ok: unknown, what: string, how: string) => {
        if (!ok) s.missing.push(`${what} (${how})`);
      };

      const id = section('intended-use', 'Identity and intended use');
      id.facts.push(
        ['Model', `${meta.backbone} (width ${meta.width}), ${meta.head} head, ${meta.task} grading: classes ${meta.classes.join(', ')}`],
        ['Model directory', resolve(modelDir)],
        ['Trained', meta.trainedAt],
      );
      if (use.intendedUse) id.text.push(use.intendedUse);
      need(id, use.intendedUse, 'intended use', 'intendedUse in --intended-use YAML');
      if (use.users) id.facts.push(['Users', use.users]);
      need(id, use.users, 'intended users', 'users');
      if (use.workflowPosition) id.facts.push(['Position in the workflow', use.workflowPosition]);
      need(id, use.workflowPosition, 'workflow position', 'workflowPosition');
      if (use.outOfScope?.length)
        id.tables.push({ caption: 'Out-of-scope inputs', header: ['input'], rows: use.outOfScope.map((o) => [o]) });
      need(id, use.outOfScope?.length, 'out-of-scope inputs', 'outOfScope');
      sections.push(id);

      const data = section('data', 'Data');
      const dsPath = config?.data?.dataset;
      if (dsPath && existsSync(join(dsPath, 'dataset.json'))) {
        const ds = await openTileDataset(dsPath);
        const split = existsSync(join(dsPath, 'splits.json')) ? await loadSplit(dsPath) : undefined;
        const fold = config?.data?.fold ?? 0;
        data.facts.push(
          ['Dataset', resolve(dsPath)],
          ['Manifest SHA-256', ds.meta.manifestSha256],
          [
            'Tiles',
            `${ds.meta.tileSize} px at ${ds.meta.mpp} um/px, stride ${ds.meta.stride}, minimum tissue ${ds.meta.minTissue}, ${ds.meta.tissueMethod} tissue detection`,
          ],
        );
        if (use.inclusionRules) data.facts.push(['Inclusion rules', use.inclusionRules]);
        if (split) {
          const parts = ['train', 'val', 'test'] as const;
          const rows = parts.map((p) => {
            const tiles = ds.tiles.filter((t) => partitionOf(split, t.patientId, fold) === p);
            return [
              p,
              String(new Set(tiles.map((t) => t.patientId)).size),
              String(new Set(tiles.map((t) => t.slideId)).size),
              String(tiles.length),
              [...new Set(tiles.map((t) => t.site))].sort().join(', '),
            ];
          });
          data.tables.push({
            caption: `Partitions (patient-grouped ${split.folds}-fold split, seed ${split.seed}; test fold ${fold})`,
            header: ['partition', 'patients', 'slides', 'tiles', 'sites'],
            rows,
          });
        }
        const slides = new Map(ds.tiles.map((t) => [t.slideId, t]));
        const grades = [...new Set([...slides.values()].map((t) => (t.grade === undefined ? 'unlabelled' : String(t.grade))))].sort();
        data.tables.push({
          caption: 'Slides per grade and site',
          header: ['grade', ...[...new Set([...slides.values()].map((t) => t.site))].sort()],
          rows: grades.map((g) => [
            g,
            ...[...new Set([...slides.values()].map((t) => t.site))]
              .sort()
              .map((s) => String([...slides.values()].filter((t) => t.site === s && String(t.grade ?? 'unlabelled') === g).length)),
          ]),
        });
        const anomalies = [...slides.values()].filter((t) => t.anomaly);
        data.facts.push(
          ['Scanners', [...new Set([...slides.values()].map((t) => t.scanner))].sort().join(', ')],
          [
            'Slides with anomalies (excluded from grading, used for OOD)',
            `${anomalies.length}: ${[...new Set(anomalies.map((t) => t.anomaly))].sort().join(', ')}`,
          ],
        );
      } else data.missing.push('the training dataset (the model directory has no config.yaml naming an existing dataset)');
      sections.push(data);

      const ref = section('reference-standard', 'Reference standard');
      if (use.referenceStandard) ref.text.push(use.referenceStandard);
      need(ref, use.referenceStandard, 'reference standard', 'referenceStandard');
      if (metrics?.agreement)
        ref.tables.push({
          caption: 'Inter-rater agreement',
          header: ['pair', 'kappa', 'QWK'],
          rows: metrics.agreement.pairwise.map((p: any) => [`${p.a} vs ${p.b}`, p.kappa.toFixed(3), p.qwk.toFixed(3)]),
        });
      else ref.text.push('No rater columns in the evaluation data: inter-rater agreement not available.');
      sections.push(ref);

      const mdl = section('model', 'Model and training');
      mdl.facts.push(
        ['Architecture', `${meta.backbone}, width ${meta.width}, input ${meta.inputSize} px, ${meta.head} head`],
        ['Initialisation', config?.model?.init ? `fine-tuned from ${config.model.init}` : 'random (seeded He-normal)'],
        ['Selection rule', `best validation QWK (slide level, mean-pooled tiles); best epoch ${meta.bestEpoch}`],
        ['Seed', String(meta.seed)],
        ['Backend', meta.backend],
      );
      if (config?.train)
        mdl.facts.push([
          'Training',
          Object.entries(config.train)
            .map(([k, v]) => `${k} ${v}`)
            .join(', '),
        ]);
      mdl.facts.push(['Augmentation', JSON.stringify(meta.augment)]);
      chartIf(mdl, 'Training curves', modelDir, 'training-curves.png');
      sections.push(mdl);

      const perf = section('performance', 'Performance');
      if (metrics) {
        perf.text.push(
          `${metrics.n} test slides from ${metrics.patients} patients. 95% confidence intervals: percentile bootstrap over patients, ${metrics.bootstrap.resamples} resamples, seed ${metrics.bootstrap.seed}.`,
        );
        perf.tables.push({
          caption: 'Overall',
          header: ['metric', 'value (95% CI)', 'CI width'],
          rows: [
            ['QWK', metrics.qwk],
            ["Cohen's kappa", metrics.kappa],
            ['accuracy', metrics.accuracy],
            ['balanced accuracy', metrics.balanced_accuracy],
            ['mean absolute error', metrics.mae],
            ['AUROC (one-vs-rest)', metrics.auroc],
            ['Brier score', metrics.brier],
            ['ECE', metrics.ece],
          ].map(([n, e]) => [n, est(e), width(e)]),
        });
        const qwkWidth = metrics.qwk.ci95[1] - metrics.qwk.ci95[0];
        if (Number.isFinite(qwkWidth) && qwkWidth / 2 > 0.1)
          perf.text.push(
            `Warning: the QWK interval is ${qwkWidth.toFixed(3)} wide (half-width ${(qwkWidth / 2).toFixed(3)} > 0.10): too few test patients to pin the model's QWK down; evaluate on more.`,
          );
        perf.tables.push({
          caption: 'Clinical cut-offs',
          header: ['cut-off', 'prevalence', 'AUROC', 'sensitivity', 'specificity'],
          rows: metrics.cutoffs.map((c: any) => [c.name, c.prevalence.toFixed(3), est(c.auroc), est(c.sensitivity), est(c.specificity)]),
        });
        for (const key of ['site', 'scanner'])
          perf.tables.push({
            caption: `Per ${key}`,
            header: [key, 'slides', 'QWK', 'accuracy', 'QWK CI width'],
            rows: Object.entries(metrics.subgroups[key]).map(([g, s]: [string, any]) => [
              g,
              String(s.n),
              est(s.qwk),
              est(s.accuracy),
              width(s.qwk),
            ]),
          });
        // Kappa within one reference grade is undefined: accuracy and mean grade error there.
        perf.tables.push({
          caption: 'Per reference grade',
          header: ['grade', 'slides', 'accuracy', 'mean absolute grade error'],
          rows: Object.entries(metrics.subgroups.grade).map(([g, s]: [string, any]) => [g, String(s.n), est(s.accuracy), est(s.mae)]),
        });
        for (const [t, f] of [
          ['Confusion matrix', 'confusion.png'],
          ['ROC at the clinical cut-offs', 'roc.png'],
          ['Reliability (calibration)', 'reliability.png'],
          ['QWK per site', 'per-site.png'],
        ])
          chartIf(perf, t, argv.eval, f);
      } else perf.missing.push('performance (run `gradelab eval` and pass --eval)');
      sections.push(perf);

      if (comparisons.length) {
        const cmp = section('comparisons', 'Paired comparisons');
        cmp.text.push(
          'Differences between two models (or conditions) on the same cases, with 95% CIs from a paired patient bootstrap: each resample draws patients once and scores both. Two separate intervals that overlap say little; the paired interval of the difference is the evidence.',
        );
        for (const { dir, c } of comparisons) {
          cmp.tables.push({
            caption: `${c!.nameB} vs ${c!.nameA} (${c!.slides} slides, ${c!.patients} patients)`,
            header: ['metric', c!.nameA, c!.nameB, 'difference (95% CI)', 'B better in', 'verdict'],
            rows: c!.metrics.map((m) => [
              m.metric,
              m.a.toFixed(3),
              m.b.toFixed(3),
              `${m.difference.value.toFixed(3)} (${m.difference.ci95[0]?.toFixed?.(3) ?? 'n/a'} to ${m.difference.ci95[1]?.toFixed?.(3) ?? 'n/a'})`,
              `${(m.shareBBetter * 100).toFixed(0)}%`,
              m.significant ? 'difference shown' : 'CI includes 0: no evidence of a difference',
            ]),
          });
          const unclear = c!.metrics.filter((m) => !m.significant).map((m) => m.metric);
          if (unclear.length)
            cmp.text.push(
              `Warning (${c!.nameB} vs ${c!.nameA}): the paired CI includes 0 for ${unclear.join(', ')}: these data do not show a difference there.`,
            );
          chartIf(cmp, `${c!.nameB} minus ${c!.nameA}`, dir, 'compare-forest.png');
        }
        sections.push(cmp);
      }

      const referral = section('referral', 'Referral analysis');
      if (metrics) {
        referral.text.push(
          `Deferring the least certain cases (uncertainty: ${metrics.referral.uncertainty}) to a pathologist; area under the risk-coverage curve ${metrics.referral.aurc.toFixed(3)}.`,
        );
        referral.tables.push({
          caption: 'Model performance on the cases it keeps',
          header: ['model keeps', 'cases', 'QWK', 'accuracy'],
          rows: metrics.referral.curve
            .filter((_: unknown, i: number) => i % 2 === 0)
            .map((p: any) => [
              `${Math.round(p.coverage * 100)}%`,
              String(p.kept),
              p.qwk === null ? 'n/a' : p.qwk.toFixed(3),
              p.accuracy.toFixed(3),
            ]),
        });
        chartIf(referral, 'Risk-coverage', argv.eval, 'risk-coverage.png');
      } else referral.missing.push('referral analysis (from --eval)');
      sections.push(referral);

      const rob = section('robustness', 'Robustness');
      for (const { dir, r } of suites) {
        if (!r) {
          rob.missing.push(`robustness results in ${dir}`);
          continue;
        }
        rob.text.push(
          `Suite ${r.suite}: ${r.passed ? 'all criteria pass' : 'some criteria FAIL'}; clean QWK ${est(r.clean.qwk)}; mCE ${r.mCE === null ? 'n/a' : r.mCE.toFixed(3)}, relative mCE ${r.relativeMCE === null ? 'n/a' : r.relativeMCE.toFixed(3)} against the baseline.`,
        );
        const drops = r.units.filter((u: any) => u.qwkDropCi);
        if (drops.length)
          rob.text.push(
            `${drops.filter((u: any) => u.dropSignificant).length} of ${drops.length} conditions show a QWK drop (or gain) whose paired 95% CI excludes 0; the others are within what ${r.clean.slides} slides can resolve.`,
          );
        for (const s of r.severitySeparation ?? [])
          if (!s.significant)
            rob.text.push(
              `${r.suite}, ${s.condition}: severity ${s.low} and ${s.high} are not told apart (paired QWK difference ${est(s.difference)}).`,
            );
        rob.tables.push({
          caption: `${r.suite}: acceptance criteria`,
          header: ['criterion', 'result', 'evidence'],
          rows: r.criteria.map((c: any) => [c.criterion, c.pass ? 'PASS' : 'FAIL', c.evidence]),
        });
        chartIf(rob, `${r.suite}: QWK drop per condition and severity`, dir, 'qwk-drop-heatmap.png');
      }
      if (!suites.length) rob.missing.push('robustness suites (run `gradelab robustness` and pass --robustness)');
      sections.push(rob);

      const oodS = section('ood', 'Out-of-distribution detection');
      if (ood) {
        oodS.text.push(
          `${ood.idTiles} in-distribution test tiles against ${ood.oodTiles} tiles of anomalous slides; OOD positive; slide scores are top-k tile means. Primary detector ${ood.primary}, accepting ${(ood.accept * 100).toFixed(0)}% of in-distribution validation slides.`,
        );
        oodS.tables.push({
          caption: 'Per detector (AUROC with 95% CI)',
          header: ['detector', 'tiles', 'slides', 'near-OOD slides', 'far-OOD slides', 'FPR@95TPR slides'],
          rows: Object.entries(ood.detectors).map(([n, d]: [string, any]) => [
            n,
            est(d.all.tile.auroc),
            est(d.all.slide.auroc),
            d.groups.near ? est(d.groups.near.slide.auroc) : 'n/a',
            d.groups.far ? est(d.groups.far.slide.auroc) : 'n/a',
            est(d.all.slide.fpr95),
          ]),
        });
        const g = ood.gradingAfterRejection;
        oodS.facts.push([
          'Grading after rejection',
          `QWK ${g.all.qwk?.toFixed?.(3) ?? 'n/a'} on all ${g.all.slides} test slides; ${g.accepted.qwk?.toFixed?.(3) ?? 'n/a'} on the ${g.accepted.slides} accepted`,
        ]);
        chartIf(oodS, 'ROC per detector', argv.ood, 'ood-roc.png');
      } else oodS.missing.push('OOD evaluation (run `gradelab ood eval` and pass --ood)');
      sections.push(oodS);

      const lim = section('limitations', 'Limitations and known failure modes');
      for (const l of use.limitations ?? []) lim.text.push(l);
      need(lim, use.limitations?.length, 'stated limitations', 'limitations');
      const worst = suites
        .flatMap(({ r }) => (r ? r.units.filter((u: any) => u.condition !== 'clean').map((u: any) => ({ suite: r.suite, ...u })) : []))
        .sort((a: any, b: any) => b.qwkDrop - a.qwkDrop)
        .slice(0, 5);
      if (worst.length)
        lim.tables.push({
          caption: 'Worst conditions found (largest QWK drop)',
          header: ['suite', 'condition', 'severity', 'QWK', 'drop'],
          rows: worst.map((u: any) => [u.suite, u.condition, u.severity ? String(u.severity) : '-', est(u.qwk), u.qwkDrop.toFixed(3)]),
        });
      if (audit) lim.tables.push({ caption: `Audit of ${audit.site}`, header: ['finding'], rows: audit.findings.map((f: string) => [f]) });
      sections.push(lim);

      const trace = section('traceability', 'Traceability');
      const prov = provenanceTags();
      trace.facts.push(
        ['Git commit', prov['mlflow.source.git.commit'] ?? 'not a git checkout'],
        ['Working tree dirty', prov['gradelab.git.dirty'] ?? 'unknown'],
        ['gradelab', prov['gradelab.version']],
        ['Node', prov['gradelab.node']],
        ['Training run', meta.runId ?? 'not tracked'],
        ['Config SHA-256', meta.configHash],
        ['Dataset manifest SHA-256', meta.datasetHash],
        ['Weights SHA-256', meta.weightsSha256 ?? (await sha256File(join(modelDir, 'weights.bin')))],
      );
      const onnxPath = join(modelDir, 'model.onnx');
      trace.facts.push([
        'model.onnx SHA-256 (the inference artifact)',
        existsSync(onnxPath) ? await sha256File(onnxPath) : 'MISSING (gradelab export --model DIR writes it)',
      ]);
      if (meta.encoder) trace.facts.push(['Frozen encoder', `${meta.encoder.onnx}, SHA-256 ${meta.encoder.sha256}`]);
      for (const [k, v] of Object.entries(prov).filter(([k]) => k.startsWith('gradelab.pkg.')))
        trace.facts.push([k.replace('gradelab.pkg.', 'package '), v]);
      sections.push(trace);

      const title = `Grading model report: ${config?.name ?? meta.backbone}`;
      const subtitle = `${meta.task} grading (${meta.classes.length} classes). Generated by gradelab ${prov['gradelab.version']} on ${new Date().toISOString().slice(0, 10)}. Every measured number comes from the outputs named in section 10; what people must supply and did not is marked MISSING.`;
      await mkdir(argv.out, { recursive: true });
      const json = {
        title,
        generated: new Date().toISOString(),
        modelDir: resolve(modelDir),
        sections: sections.map((s) => ({ ...s, charts: s.charts.map((ch) => ({ title: ch.title, file: ch.png })) })),
        inputs: {
          metrics: metrics ?? null,
          ood: ood ?? null,
          robustness: suites.map((s) => s.r ?? null),
          audit: audit ?? null,
          intendedUse: use,
          model: meta,
        },
      };
      await writeFileAtomic(
        join(argv.out, 'report.json'),
        JSON.stringify(json, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
      );
      await writeFileAtomic(join(argv.out, 'report.html'), renderReportHtml(title, subtitle, sections));
      await renderReportPdf(join(argv.out, 'report.pdf'), title, subtitle, sections);
      const missingCount = sections.reduce((n, s) => n + s.missing.length, 0);
      log.info(
        `report: ${join(argv.out, 'report.html')}, report.pdf, report.json${missingCount ? ` (${missingCount} items MISSING)` : ''}`,
      );
    },
  );
}
