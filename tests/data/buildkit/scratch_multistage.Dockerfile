ARG GREETING="hi"
FROM scratch AS build
ARG GREETING
COPY hello.txt /app/hello.txt
COPY --chmod=0755 run.sh /app/run.sh
FROM scratch AS final
COPY --from=build /app /app
LABEL org.example.greeting=$GREETING
