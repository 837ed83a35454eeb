/**
 * The one rule for "is this photo on the walls?": processed, not hidden by the operator and, in
 * approval mode, approved. The store's queries, the broadcaster's callers and the public routes
 * all ask here, so a photo can never be on one wall and not another.
 */
export interface VisibilityFields {
  status: string;
  hidden: boolean;
  approved: boolean;
}

export function isOnWalls(photo: VisibilityFields): boolean {
  return photo.status === 'done' && !photo.hidden && photo.approved;
}

/**
 * The same rule as a SQL condition on the `photos` table: the store's listOnWalls/getOnWalls, which
 * back every guest route (list, detail, cut-out, protocol-2 history), so a guest is never handed a
 * photo that was fetched and then filtered.
 */
export const ON_WALLS_SQL = `status = 'done' AND hidden = 0 AND approved = 1`;
