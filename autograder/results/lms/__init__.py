"""The LMS in and out: a bulk download of submissions becomes the grader's submissions folder
(:mod:`.bulk`, with :mod:`.canvas` and :mod:`.moodle` reading their LMS's naming), and grades
read from the gradebook go back as the LMS's import file (:mod:`.grades` gives each cell). The
roster (:mod:`.roster`) maps LMS users to student ids."""
