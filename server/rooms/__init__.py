"""Ad-hoc video-meeting rooms with invitation lists (the stand-in until scheduled meetings)."""
