import SlipwayCommands

await SlipwayCommand.main()
