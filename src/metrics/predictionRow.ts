/**
 * The predictions file every gradelab evaluation reads, and any tool can write: one row per slide (or
 * tile) with slide_id, patient_id, site, scanner, label, pred, prob_0..prob_{K-1}, and optionally
 * uncertainty, ood_score, ood_flag and rater_<name> columns. label, pred and rater grades are class
 * indices 0..K-1 (ISUP 0-5 for prostate; Nottingham 1-3 as 0-2 for breast); label may be empty for
 * unlabelled cases.
 */
export interface PredictionRow {
  slideId: string;
  patientId: string;
  site: string;
  scanner: string;
  label?: number;
  pred: number;
  probs: number[];
  uncertainty?: number;
  oodScore?: number;
  oodFlag?: boolean;
  raters: Record<string, number>;
  /** Extra columns carried through (anomaly, tile position, ...). */
  extra: Record<string, string>;
}
