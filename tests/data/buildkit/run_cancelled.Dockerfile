FROM kit-local/sh:host
RUN echo start && sleep 30 && echo end
