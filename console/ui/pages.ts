/** Rows per page of the devices granted an update (the detail's "Load more" adds as many); tests read it. */
export const UPDATE_DEVICES_PAGE = 20;
